//! A pool of connections to one interface, for the workers of a run: each
//! entity takes a connection and gives it back, so it does not pay for
//! opening the source (for a CSV interface, loading its files) every time.

use super::{Interface, SourceError, connect};
use rusqlite::Connection;
use std::sync::Mutex;

pub struct Pool {
    iface: Interface,
    idle: Mutex<Vec<Connection>>,
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
    pub fn with<T>(&self, f: impl FnOnce(&Connection) -> T) -> Result<T, SourceError> {
        let conn = match self.idle.lock().map(|mut v| v.pop()) {
            Ok(Some(c)) => c,
            _ => connect(&self.iface)?,
        };
        let r = f(&conn);
        if let Ok(mut v) = self.idle.lock() {
            v.push(conn);
        }
        Ok(r)
    }
}
