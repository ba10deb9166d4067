//! `NAME=value` option lists: separated by blanks or commas, names checked
//! against the statement's table (with "did you mean"), values typed.

use super::error::{ErrorKind, PErr};
use super::keywords::{OptSpec, OptType, suggest};
use super::lexeme::{Lit, followed_by_eq, peek_char, pos, punct, value, word_len};
use super::values;
use super::{Ctx, In, PResult, nested_statement};
use crate::ast::{Opt, Options, Span, Value};
use nom::Err;

/// Reads options until the next token is not `NAME =`. Stops without error
/// there; the statement's `end` check reports what is wrong after it.
pub(crate) fn options<'a>(i: In<'a>, specs: &'static [OptSpec], ctx: Ctx) -> PResult<'a, Options> {
    let mut out: Vec<Opt> = Vec::new();
    let mut i = i;
    loop {
        let before_comma = i;
        if !out.is_empty() && peek_char(&i, ',') {
            i = punct(',')(i)?.0;
        }
        let Some(n) = word_len(i.fragment()) else {
            if pos(&before_comma) != pos(&i) {
                return Err(Err::Failure(PErr::expected(&i, "an option")));
            }
            break;
        };
        let name_text = &i.fragment()[..n];
        let spec = lookup(specs, name_text);
        if !followed_by_eq(&i) {
            if spec.is_some() {
                // A known option without '=': point at what stands there.
                let (rest, _) = super::lexeme::word(i)?;
                return Err(Err::Failure(PErr::expected(&rest, "'='")));
            }
            if pos(&before_comma) != pos(&i) {
                return Err(Err::Failure(PErr::expected(&i, "an option")));
            }
            break;
        }
        let start = pos(&i);
        let name_span = Span::new(start, start + n);
        let Some(spec) = spec else {
            return Err(Err::Failure(unknown_option(name_text, name_span, specs)));
        };
        if out.iter().any(|o| o.name == spec.name) {
            return Err(Err::Failure(PErr::span(
                name_span,
                ErrorKind::DuplicateOption { name: spec.name },
            )));
        }
        let (rest, _) = super::lexeme::word(i)?;
        let (rest, _) = punct('=')(rest)?;
        let (rest, lit) = value(rest).map_err(|e| match e {
            Err::Error(e) => Err::Failure(e),
            e => e,
        })?;
        let value = typed(spec, &lit, ctx).map_err(Err::Failure)?;
        out.push(Opt {
            name: spec.name,
            value,
            span: Span::new(start, lit.span.end),
        });
        i = rest;
    }
    Ok((i, Options(out)))
}

pub(crate) fn lookup(specs: &'static [OptSpec], name: &str) -> Option<&'static OptSpec> {
    specs.iter().find(|s| {
        s.name.eq_ignore_ascii_case(name) || s.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
    })
}

pub(crate) fn unknown_option(found: &str, span: Span, specs: &'static [OptSpec]) -> PErr {
    let valid: Vec<&'static str> = specs.iter().map(|s| s.name).collect();
    let suggestion = suggest(found, valid.iter().copied());
    PErr::span(
        span,
        ErrorKind::UnknownOption {
            found: found.to_string(),
            valid,
            suggestion,
        },
    )
}

/// Converts a written value to the option's type.
pub(crate) fn typed(spec: &OptSpec, lit: &Lit, ctx: Ctx) -> Result<Value, PErr> {
    let s = lit.value.as_str();
    let bad = || {
        PErr::span(
            lit.span,
            ErrorKind::InvalidValue {
                option: spec.name.to_string(),
                expected: spec.ty.describe(),
                found: s.to_string(),
            },
        )
    };
    let v = match spec.ty {
        OptType::Bool => Value::Bool(values::parse_bool(s).ok_or_else(bad)?),
        OptType::Int => Value::Int(values::parse_int(s).ok_or_else(bad)?),
        OptType::Number => Value::Number(values::parse_number(s).ok_or_else(bad)?),
        OptType::Duration => Value::Duration(values::parse_duration(s).ok_or_else(bad)?),
        OptType::IntOrPercent => match values::parse_int(s) {
            Some(n) if n >= 0 => Value::Int(n),
            _ => Value::Percent(values::parse_percent(s).ok_or_else(bad)?),
        },
        OptType::Str => Value::Str(s.to_string()),
        OptType::Char => {
            let mut cs = s.chars();
            match (cs.next(), cs.next()) {
                (Some(_), None) => Value::Str(s.to_string()),
                _ => return Err(bad()),
            }
        }
        OptType::JsonArray | OptType::JsonObject => {
            let j: serde_json::Value = serde_json::from_str(s).map_err(|_| bad())?;
            let fits = match spec.ty {
                OptType::JsonArray => j.is_array(),
                _ => j.is_object(),
            };
            if !fits {
                return Err(bad());
            }
            Value::Json(j)
        }
        OptType::Enum { values, list } => {
            let parts: Vec<String> = s
                .split(',')
                .map(|p| p.trim().to_ascii_uppercase())
                .collect();
            if parts.is_empty() || (!list && parts.len() > 1) {
                return Err(bad());
            }
            for p in &parts {
                if !values.contains(&p.as_str()) {
                    let mut e = bad();
                    if let (ErrorKind::InvalidValue { expected, .. }, Some(near)) =
                        (&mut e.0.kind, suggest(p, values.iter().copied()))
                    {
                        *expected = format!("{expected} (did you mean {near}?)");
                    }
                    return Err(e);
                }
            }
            Value::Str(parts.join(","))
        }
        OptType::Time => {
            if !values::is_time(s) {
                return Err(bad());
            }
            Value::Str(s.trim().to_string())
        }
        OptType::Schedule => Value::Schedule(values::parse_schedule(s).ok_or_else(|| {
            let mut e = bad();
            if let ErrorKind::InvalidValue { expected, .. } = &mut e.0.kind
                && values::is_zero_interval(s)
            {
                *expected = values::NONZERO_INTERVAL.to_string();
            }
            e
        })?),
        OptType::Statement => {
            let stmt = nested_statement(lit, ctx.depth, "COMMAND").map_err(PErr)?;
            Value::Statement(Box::new(stmt))
        }
    };
    Ok(v)
}

/// Fails unless every option in `required` was given.
pub(crate) fn require(
    opts: &Options,
    required: &[&'static str],
    statement: &'static str,
    at: Span,
) -> Result<(), Err<PErr>> {
    for name in required {
        if opts.get(name).is_none() {
            return Err(Err::Failure(PErr::span(
                at,
                ErrorKind::MissingOption { name, statement },
            )));
        }
    }
    Ok(())
}
