//! For tests: a batch made as a run would make it, and the contract's
//! SQL seam on the store's own connection.

use super::SqliteStore;
use crate::store::batches::BatchStore;
use crate::store::contract::batches::{new_batch, test_run};

impl SqliteStore {
    /// For tests: a new `echo ?` batch `bid` of LU `L`, owned by the
    /// contract's [`test_run`].
    pub(crate) fn test_batch(&self, bid: &str) {
        // Its LU, which taking the batch over checks.
        self.conn()
            .execute_batch(
                "INSERT OR IGNORE INTO lus (name, interface, root_sql, created_at)
                 VALUES ('L', 'i', 'select 1', '2026-01-01T00:00:00.000Z')",
            )
            .unwrap();
        new_batch(self, bid, "L", "echo ?");
        self.take_ownership(test_run(bid), "dc").unwrap();
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
