//! `BATCH_PURGE`'s statements on PostgreSQL (see
//! [`crate::store::BatchStore::purgeable`] and the methods after it).

use super::PgStore;
use crate::batch::BatchStatus;
use crate::store::batches::Purgeable;
use crate::store::{Result, StoreError};

fn not_built(s: &PgStore) -> StoreError {
    StoreError::Postgres {
        store: s.shown.display().to_string(),
        message: "not built yet on PostgreSQL: purge".into(),
    }
}

pub(super) fn purgeable(
    s: &PgStore,
    _cutoff: &str,
    _statuses: &[BatchStatus],
) -> Result<Vec<Purgeable>> {
    Err(not_built(s))
}

pub(super) fn purge_batch(s: &PgStore, _seen: &Purgeable) -> Result<bool> {
    Err(not_built(s))
}

pub(super) fn purge_rows(s: &PgStore, _batch_no: i64, _max_rows: usize) -> Result<usize> {
    Err(not_built(s))
}

pub(super) fn orphan_batch_nos(s: &PgStore) -> Result<Vec<i64>> {
    Err(not_built(s))
}
