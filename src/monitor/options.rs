//! The options of the monitoring statements, read and checked: times,
//! regular expressions, limits, comma lists and statuses. A bad one is an
//! error that points at it.

use super::*;

impl Cx<'_> {
    /// A time option as an instant: the start of its day (`From`) or the
    /// end of its day / just past its instant (`Until`, exclusive).
    pub(super) fn time_opt<Tz: TimeZone>(
        &self,
        options: &Options,
        name: &str,
        tz: &Tz,
        bound: Bound,
    ) -> Result<Option<DateTime<Utc>>> {
        let Some(v) = options.get(name) else {
            return Ok(None);
        };
        let text = str_opt(options, name, v)?;
        time_bound(text, bound, self.now, tz)
            .map(Some)
            .ok_or_else(|| {
                error(
                    opt_span(options, name),
                    format!(
                        "{name}='{text}' is not a time; use 'today', 'yesterday', 'now', \
                         'YYYY-MM-DD', 'YYYY-MM-DD HH:MM:SS' or RFC 3339"
                    ),
                )
            })
    }

    pub(super) fn regex_opt(&self, options: &Options, name: &str) -> Result<Option<Regex>> {
        let Some(v) = options.get(name) else {
            return Ok(None);
        };
        let text = str_opt(options, name, v)?;
        Regex::new(text).map(Some).map_err(|e| {
            // The regex crate's message draws the pattern with its own
            // caret and "error:" line; the reason is that line's end (the
            // diagnostic already points at the option).
            let full = e.to_string();
            let why = full.rsplit("error: ").next().unwrap_or(&full).trim();
            error(
                opt_span(options, name),
                format!("{name} is not a valid regular expression: {why}"),
            )
        })
    }

    /// `LIMIT`: `-1` is all, `0` or more a count; absent, `default`.
    pub(super) fn limit_opt(
        &self,
        options: &Options,
        default: Option<usize>,
    ) -> Result<Option<usize>> {
        match options.get("LIMIT") {
            None => Ok(default),
            Some(Value::Int(-1)) => Ok(None),
            Some(Value::Int(n)) if *n >= 0 => Ok(Some(usize::try_from(*n).unwrap_or(usize::MAX))),
            Some(v) => Err(error(
                opt_span(options, "LIMIT"),
                match v {
                    Value::Int(n) => format!("LIMIT must be -1 (all) or 0 or more, not {n}"),
                    other => format!("LIMIT must be a number, not {other:?}"),
                },
            )),
        }
    }
}

/// `a, b,c` -> `["a", "b", "c"]`: parts trimmed, empty ones dropped.
pub(super) fn comma_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

/// A comma-list option (`ENTITIES='1,2'`), if given.
pub(super) fn list_opt(options: &Options, name: &str) -> Result<Option<Vec<String>>> {
    options
        .get(name)
        .map(|v| str_opt(options, name, v).map(comma_list))
        .transpose()
}

/// The entities `STATUS` and `ENTITIES` select (`BATCH_DETAILS`,
/// `BATCH_OUTPUT`): every other field of the query is its default.
pub(super) fn entity_filter(options: &Options) -> Result<store::DetailsQuery> {
    let statuses = list_opt(options, "STATUS")?
        .map(|v| {
            let upper: Vec<String> = v.iter().map(|s| s.to_ascii_uppercase()).collect();
            parse_statuses(options, &upper, str::parse::<EntityStatus>)
        })
        .transpose()?;
    Ok(store::DetailsQuery {
        statuses,
        entity_ids: list_opt(options, "ENTITIES")?,
        ..Default::default()
    })
}

/// An option's value as text; the parser gives these options as strings,
/// anything else is a caller's bug reported at the option.
pub(super) fn str_opt<'v>(options: &Options, name: &str, v: &'v Value) -> Result<&'v str> {
    match v {
        Value::Str(s) => Ok(s),
        other => Err(error(
            opt_span(options, name),
            format!("{name} takes a string, not {other:?}"),
        )),
    }
}

/// The statuses a STATUS option names, each checked.
pub(super) fn parse_statuses<S, E: std::fmt::Display>(
    options: &Options,
    texts: &[String],
    parse: impl Fn(&str) -> std::result::Result<S, E>,
) -> Result<Vec<S>> {
    texts
        .iter()
        .map(|t| parse(t).map_err(|e| error(opt_span(options, "STATUS"), e.to_string())))
        .collect()
}

/// The span of option `name`.
pub(super) fn opt_span(options: &Options, name: &str) -> Option<Span> {
    options.0.iter().find(|o| o.name == name).map(|o| o.span)
}
