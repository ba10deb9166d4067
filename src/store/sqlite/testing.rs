//! For tests: batches made as a run would make them.

use super::SqliteStore;
use crate::store::batches::*;

/// For tests: the run of batch `bid` that [`Store::test_batch`] starts
/// (execution `e1` on node `n1`).
pub(crate) fn test_run(bid: &str) -> RunRef<'_> {
    RunRef {
        bid,
        execution_id: "e1",
        node: "n1",
        worker: "w1",
    }
}

impl SqliteStore {
    /// For tests: a new `echo ?` batch `bid`, owned by node `n1`.
    pub(crate) fn test_batch(&self, bid: &str) {
        // Its LU, which taking the batch over checks.
        self.conn()
            .execute_batch(
                "INSERT OR IGNORE INTO lus (name, interface, root_sql, created_at)
                 VALUES ('L', 'i', 'select 1', '2026-01-01T00:00:00.000Z')",
            )
            .unwrap();
        self.test_new_batch(bid, "L", "echo ?");
        self.take_ownership(test_run(bid), "dc").unwrap();
    }

    /// Creates batch `bid` of LU `lu` running `fabric_command`, as a run
    /// starting from node `n1` would, not yet owned.
    pub(crate) fn test_new_batch(&self, bid: &str, lu: &str, fabric_command: &str) {
        self.create_batch(
            &NewBatch {
                bid,
                command: "BATCH x",
                lu,
                fabric_command,
                source: &serde_json::json!({}),
                arguments: &serde_json::json!({}),
                execution_id: "e1",
                node: "n1",
                estimated_total: None,
                max_workers: None,
                queued: false,
                placement: &crate::batch::Placement::default(),
                open: false,
                workdir: None,
                lines: None,
                series: None,
            },
            false,
        )
        .unwrap();
        // Not yet owned: as if its process had not taken it yet.
        self.conn()
            .execute(
                "UPDATE batches SET owner_node = NULL, owner_pid = NULL WHERE bid = ?1",
                [bid],
            )
            .unwrap();
    }
}

impl crate::store::contract::ContractStore for SqliteStore {
    fn try_execute(&self, sql: &str) -> Result<(), String> {
        self.conn().execute_batch(sql).map_err(|e| e.to_string())
    }

    fn rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        use rusqlite::types::ValueRef;
        let mut st = self
            .conn()
            .prepare(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let n = st.column_count();
        st.query_map([], |r| {
            (0..n)
                .map(|i| {
                    Ok(match r.get_ref(i)? {
                        ValueRef::Null => None,
                        ValueRef::Integer(v) => Some(v.to_string()),
                        ValueRef::Real(v) => Some(v.to_string()),
                        ValueRef::Text(t) | ValueRef::Blob(t) => {
                            Some(String::from_utf8_lossy(t).into_owned())
                        }
                    })
                })
                .collect()
        })
        .and_then(|rows| rows.collect())
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}
