//! `BATCH_OUTPUT` (SPEC §6): the raw stdout (or stderr) of a batch's
//! entities, in input order, each entity's text whole, as `parallel -k`
//! prints it, so that a pipeline (`batchsh -c "BATCH_OUTPUT" | sort`)
//! reads the entities' own output.
//!
//! Decisions the spec leaves open:
//!
//! - The text is what the entity's result keeps: its `stdout` (or
//!   `stderr`), cut at `OUTPUT_LIMIT` where the result says
//!   `"truncated": true` (the session notes on stderr how many were cut).
//!   The table format prints each text as it is, and a newline after one
//!   that does not end with one ([`Raw::text`]).
//! - A `pipe` entity's stdout is its answer line: the `line` of its
//!   result, or the JSON object it answered (compact);
//!   its process's stderr is no entity's own, so it has none.
//! - Entities whose command has no such stream (`echo`, `sleep`, `sql`,
//!   `sync_instance`, `delete_instance`), or that have no result yet
//!   (waiting, in process, failed before their command ran) print nothing:
//!   their result JSON is not output, `BATCH_DETAILS` shows it.
//! - `--format json` and `csv` print one record per selected entity:
//!   `entity_id`, `stdout` (or `stderr`) and `truncated`, `null` where
//!   there is no text.

use super::*;
use crate::output::Raw;

impl Cx<'_> {
    pub(super) fn output(&self, bid: Option<&Text>, options: &Options) -> Result<Output> {
        let span = bid.map(|t| t.span);
        let b = self.batch(bid)?;
        let stderr = matches!(
            options.get("STREAM"),
            Some(Value::Str(s)) if s.eq_ignore_ascii_case("stderr")
        );
        let (key, columns) = if stderr {
            ("stderr", columns::BATCH_OUTPUT_STDERR)
        } else {
            ("stdout", columns::BATCH_OUTPUT_STDOUT)
        };
        let rows = self
            .store
            .entity_rows(&b.bid, &entity_filter(options)?)
            .map_err(self.store_err(span))?;
        // The stored command is the canonical text (`pipe 'prog' ...`).
        let pipe = b.fabric_command.starts_with("pipe ");
        let mut records = Table::new(columns.iter().copied());
        for e in rows {
            let result = e
                .result
                .as_deref()
                .and_then(|r| serde_json::from_str::<serde_json::Value>(r).ok());
            let answer = match (&result, pipe && !stderr) {
                (Some(r), true) => Some(match r.get("line").and_then(serde_json::Value::as_str) {
                    Some(line) => line.to_string(),
                    None => r.to_string(),
                }),
                _ => None,
            };
            let text = answer.as_deref().or_else(|| {
                result
                    .as_ref()
                    .and_then(|r| r.get(key))
                    .and_then(serde_json::Value::as_str)
            });
            let truncated = text.map(|_| {
                result
                    .as_ref()
                    .and_then(|r| r.get("truncated"))
                    .and_then(serde_json::Value::as_bool)
                    == Some(true)
            });
            records.push_row(vec![
                Cell::Text(e.entity_id),
                text.map(str::to_string).into(),
                truncated.map_or(Cell::Null, Cell::Bool),
            ]);
        }
        Ok(Output::Raw(Raw {
            records,
            text_column: 1,
        }))
    }
}
