//! The status enums of [`crate::batch`] as the store keeps them: their SPEC
//! spelling, as text. A text that is no status (a damaged store, or one a
//! newer batchsh wrote) fails the read with the status error.

use crate::batch::{BatchStatus, EntityStatus, JobStatus, Request};
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

macro_rules! as_text {
    ($($t:ty),+) => {$(
        impl ToSql for $t {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $t {
            fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
                v.as_str()?
                    .parse()
                    .map_err(|e| FromSqlError::Other(Box::new(e)))
            }
        }
    )+};
}

as_text!(BatchStatus, EntityStatus, JobStatus, Request);
