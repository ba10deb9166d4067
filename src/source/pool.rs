//! A pool of connections to one interface, for the workers of a run: each
//! entity takes a connection and gives it back, so it does not pay for
//! opening the source (for a CSV interface, loading its files) every time.

//!
//! A pool opens a connection only when every one it has is in use, so a
//! run holds at most one per worker thread (a `POSTGRES` interface is
//! never connected to per entity). A PostgreSQL connection that was lost
//! is not given back: the next entity opens a new one.

use super::{Conn, Interface, SourceError, open};
use std::sync::Mutex;

pub struct Pool {
    iface: Interface,
    idle: Mutex<Vec<Conn>>,
}

impl Pool {
    pub fn new(iface: Interface) -> Pool {
        Pool {
            iface,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Runs `f` on a connection of the pool (opened if none is idle), and
    /// gives the connection back.
    pub fn with<T>(&self, f: impl FnOnce(&mut Conn) -> T) -> Result<T, SourceError> {
        let mut conn = match self.idle.lock().map(|mut v| v.pop()) {
            Ok(Some(c)) => c,
            _ => open(&self.iface)?,
        };
        let r = f(&mut conn);
        if conn.is_usable()
            && let Ok(mut v) = self.idle.lock()
        {
            v.push(conn);
        }
        Ok(r)
    }
}
