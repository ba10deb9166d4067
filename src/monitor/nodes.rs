//! `SHOW NODES` (SPEC §6): the nodes of the store, each as it stands now
//! (alive, stopping, dead or stopped) and what it is doing.

use super::{Cx, Result};
use crate::output::{Cell, Output, Table, columns};
use crate::store::nodes::{NodeRecord, NodeState};

impl Cx<'_> {
    pub(super) fn nodes(&self) -> Result<Output> {
        let nodes = self.store.nodes().map_err(self.store_err(None))?;
        let loads = self.store.node_loads().map_err(self.store_err(None))?;
        let mut t = Table::new(columns::SHOW_NODES.iter().copied());
        for n in nodes {
            let load = loads.iter().find(|l| l.worker_id == n.worker_id);
            let age = chrono::DateTime::parse_from_rfc3339(&n.heartbeat_at)
                .ok()
                .and_then(|beat| (self.now - beat.with_timezone(&chrono::Utc)).to_std().ok())
                .unwrap_or_default();
            t.push_row(vec![
                Cell::Text(n.node.clone()),
                Cell::Text(n.dc.clone()),
                Cell::Text(n.worker_id.clone()),
                Cell::Text(n.host.clone()),
                Cell::Int(n.pid),
                Cell::Text(n.kind.as_str().into()),
                Cell::Text(status(&n).into()),
                Cell::Int(n.workers),
                Cell::Duration(age),
                Cell::Int(load.map_or(0, |l| l.batches)),
                Cell::Int(load.map_or(0, |l| l.in_process)),
            ]);
        }
        Ok(t.into())
    }
}

/// How a node stands, as SHOW NODES says it: `alive`, `stopping`, `dead`
/// (declared so by another node, or its process gone, or silent past the
/// heartbeat limit) or `stopped`.
fn status(n: &NodeRecord) -> &'static str {
    match n.state {
        NodeState::Stopped => "stopped",
        NodeState::Dead => "dead",
        _ if !n.alive() => "dead",
        NodeState::Stopping => "stopping",
        NodeState::Running => "alive",
    }
}
