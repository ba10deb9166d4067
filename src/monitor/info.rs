//! `BATCH_INFO`: everything about one batch as key/value rows, its stored
//! options read back by name and its entity source as one readable line.

use super::*;
use crate::batch::short_id;

/// How many ids of a listed entity source `BATCH_INFO` shows.
const SOURCE_IDS_SHOWN: usize = 10;

impl Cx<'_> {
    pub(super) fn info(&self, bid: Option<&Text>) -> Result<Output> {
        let b = self.batch(bid)?;
        let status = shown_status(self.store, &b).map_err(self.store_err(bid.map(|t| t.span)))?;
        let mut kv = KeyValues::new();
        kv.push("Batch id", b.bid.as_str());
        kv.push("Command", b.command.as_str());
        kv.push("Status", status);
        kv.push("Open", open_cell(&b));
        kv.push("LU", b.lu.as_str());
        kv.push("Fabric command", b.fabric_command.as_str());
        kv.push("Entity source", describe_source(&b.source));
        match serde_json::from_str::<serde_json::Value>(&b.arguments) {
            Ok(serde_json::Value::Object(mut map)) => {
                // Every option of BATCH, by name (so the same batch always
                // reads the same way): its value as given, else its
                // default, else null (none; MAX_WORKERS_PER_NODE: the
                // node's worker count).
                let mut names: Vec<&str> = crate::syntax::keywords::BATCH_OPTIONS
                    .iter()
                    .map(|o| o.name)
                    .collect();
                names.sort_unstable();
                for name in names {
                    let value = map.remove(name).unwrap_or_else(|| option_default(name));
                    kv.push(format!("Option {name}"), option_cell(value));
                }
                // Anything else stored (a store written by a later batchsh).
                for (name, value) in map {
                    kv.push(format!("Option {name}"), option_cell(value));
                }
            }
            Ok(other) => kv.push("Options", Cell::Json(other)),
            Err(_) => kv.push("Options", b.arguments.as_str()),
        }
        kv.push("Execution id", b.execution_id.as_str());
        kv.push("Created by", b.created_by.as_str());
        kv.push("Creation time", time_cell(Some(b.creation_time.as_str())));
        kv.push("Start time", time_cell(b.start_time.as_deref()));
        kv.push("End time", time_cell(b.end_time.as_deref()));
        kv.push("Error", b.error.clone());
        kv.push("extra_stats", json_cell(b.extra_stats.as_deref()));
        let err = self.store_err(None);
        if let Some(job) = self.store.batch_job(&b.bid).map_err(&err)? {
            kv.push("Job", self.job_line(&job).map_err(&err)?);
            kv.push("Waiting", placement_wait(self.store, &b.bid).map_err(&err)?);
        }
        Ok(kv.into())
    }

    /// An asynchronous batch's job: its name, status and owner.
    fn job_line(&self, job: &crate::store::queue::BatchJob) -> store::Result<String> {
        let owner = match &job.owner_worker {
            Some(w) => {
                let node = self.store.nodes()?.into_iter().find(|n| n.worker_id == *w);
                match node {
                    Some(n) => format!(", owner node {} (worker {})", n.node, short_id(w)),
                    None => format!(", owner worker {}", short_id(w)),
                }
            }
            None => String::new(),
        };
        Ok(format!("{} ({}{owner})", job.name, job.status))
    }
}

/// Whether the batch takes `BATCH_APPEND`: `open`, `closed` (by
/// `BATCH_WAITOFF`, or it ended), or null for a batch created without
/// `OPEN=true`.
fn open_cell(b: &crate::store::BatchRow) -> Cell {
    use crate::store::appends::Openness;
    match b.openness {
        Openness::NotOpen => Cell::Null,
        Openness::Open if !b.is_final() => Cell::Text("open".into()),
        Openness::Open | Openness::Closed => Cell::Text("closed".into()),
    }
}

/// The value a BATCH option not given has (SPEC §4), as it is stored
/// when given; null when it has none.
fn option_default(name: &str) -> serde_json::Value {
    use serde_json::Value as J;
    match name {
        "ASYNC"
        | "GENERATE_ENTITIES_FIRST"
        | "ALLOW_MULTIPLE"
        | "TRUNC_START"
        | "OPEN"
        | "RESUME"
        | "SHOW_OUTPUT" => J::Bool(false),
        "MAX_RETRIES" | "REPROCESS_HOURS" => J::from(0),
        "RETRY_DELAY" => J::from("1s"),
        "OUTPUT_LIMIT" => J::from("1MB"),
        "BIND_PARAMS_SEPARATOR" => J::from(","),
        _ => J::Null,
    }
}

/// An option's stored value as the cell of its type.
fn option_cell(v: serde_json::Value) -> Cell {
    use serde_json::Value as J;
    match v {
        J::Null => Cell::Null,
        J::Bool(b) => Cell::Bool(b),
        J::String(s) => Cell::Text(s),
        J::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Cell::Int(i),
            (None, Some(f)) => Cell::Float(f),
            (None, None) => Cell::Text(n.to_string()),
        },
        other => Cell::Json(other),
    }
}

/// The stored entity source as one readable line: its kind first, then
/// each part (`group: vip`, `ids: 1, 2, 3`, `interface: crm`,
/// `SQL: select ...`). Text that is not JSON is shown as it is.
pub fn describe_source(text: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(v) => describe(&v),
        Err(_) => text.to_string(),
    }
}

fn describe(v: &serde_json::Value) -> String {
    use serde_json::Value as J;
    match v {
        J::String(s) => s.clone(),
        J::Array(items) => {
            let mut shown: Vec<String> =
                items.iter().take(SOURCE_IDS_SHOWN).map(describe).collect();
            if items.len() > SOURCE_IDS_SHOWN {
                shown.push(format!("... ({} in all)", items.len()));
            }
            shown.join(", ")
        }
        J::Object(map) => {
            let kind_keys = ["kind", "type"];
            let mut parts: Vec<String> = kind_keys
                .iter()
                .filter_map(|k| map.get(*k).and_then(J::as_str))
                .map(str::to_string)
                .collect();
            for (k, v) in map {
                if kind_keys.contains(&k.as_str()) && v.is_string() {
                    continue;
                }
                let label = if k.eq_ignore_ascii_case("sql") {
                    "SQL"
                } else {
                    k.as_str()
                };
                parts.push(format!("{label}: {}", describe(v)));
            }
            parts.join(", ")
        }
        other => other.to_string(),
    }
}
