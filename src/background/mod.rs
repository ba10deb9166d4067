//! Batchsh's background processes as the rest of batchsh reaches them:
//! starting a worker for this store when none runs ([`spawn`]), waking the
//! idle workers of this host ([`wake`]), and the heartbeat that a worker,
//! or a tick that runs jobs, beats while it lives ([`heartbeat`]). The
//! worker's own loop is [`crate::worker`]; statements that queue work
//! reach workers only through here.

pub mod heartbeat;
pub mod spawn;
pub mod wake;

/// Why a worker could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}
