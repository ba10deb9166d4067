//! The nodes table (SPEC §7, §13): every process that takes part in
//! batches (a synchronous run, later a background worker or a tick)
//! registers a row under an identity of its own, its worker id, and
//! heartbeats it. Claims name that worker id, so that the claims of a node
//! found dead (and only those) go back to WAITING, and a node declared dead
//! writes nothing more (its row says so; every write of a run checks it).

use super::Result;

/// What kind of process a node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    /// A synchronous `BATCH` (or retry) running in the statement's own
    /// process: one identity per run.
    Synchronous,
    /// `batchsh worker`.
    Worker,
    /// `batchsh tick`.
    Tick,
}

impl NodeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Synchronous => "synchronous",
            NodeKind::Worker => "worker",
            NodeKind::Tick => "tick",
        }
    }

    pub fn parse(s: &str) -> Option<NodeKind> {
        [NodeKind::Synchronous, NodeKind::Worker, NodeKind::Tick]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// The state a node's row records. Whether a `Running` node is alive is
/// decided from its pid and heartbeat ([`NodeRecord::alive`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeState {
    Running,
    /// Draining: no new claims (a worker after SIGTERM).
    Stopping,
    /// Ended cleanly.
    Stopped,
    /// Declared dead by another node, which took its claims back: should
    /// it only have stalled, it writes nothing more.
    Dead,
}

impl NodeState {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Running => "RUNNING",
            NodeState::Stopping => "STOPPING",
            NodeState::Stopped => "STOPPED",
            NodeState::Dead => "DEAD",
        }
    }

    pub fn parse(s: &str) -> Option<NodeState> {
        [
            NodeState::Running,
            NodeState::Stopping,
            NodeState::Stopped,
            NodeState::Dead,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// A node as it registers.
#[derive(Clone, Debug)]
pub struct NodeInfo<'a> {
    pub worker_id: &'a str,
    pub node: &'a str,
    pub dc: &'a str,
    pub kind: NodeKind,
    /// How many entity threads it has.
    pub workers: usize,
    /// Its host's IP addresses (an affinity entry may name one).
    pub addrs: &'a [String],
}

/// A row of the nodes table.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeRecord {
    pub worker_id: String,
    pub node: String,
    pub dc: String,
    pub host: String,
    pub pid: i64,
    pub kind: NodeKind,
    pub state: NodeState,
    pub workers: i64,
    pub started_at: String,
    pub heartbeat_at: String,
    pub addrs: Vec<String>,
}

impl NodeRecord {
    /// Whether this is a live worker that takes new work (not one that is
    /// stopping: it may be on its way out).
    pub fn takes_work(&self) -> bool {
        self.kind == NodeKind::Worker && self.state == NodeState::Running && self.alive()
    }

    /// Who the node is, for placement (affinity, `@DC`).
    pub fn ident(&self) -> crate::batch::NodeIdent {
        crate::batch::NodeIdent {
            node: self.node.clone(),
            dc: self.dc.clone(),
            addrs: self.addrs.clone(),
        }
    }

    /// Whether the node is alive: running or draining, and its process
    /// is (on this host, its pid is checked, so a kill -9 is seen at once;
    /// elsewhere its heartbeat must be recent).
    ///
    /// A node of this very process is alive while it runs here
    /// ([`LiveHere`]): a run that ended, or was taken over, in a process
    /// that goes on (a REPL) is not.
    pub fn alive(&self) -> bool {
        if !matches!(self.state, NodeState::Running | NodeState::Stopping) {
            return false;
        }
        if self.pid == i64::from(std::process::id()) && self.host == crate::owner::hostname() {
            return live_here().contains(&self.worker_id);
        }
        match self.kind {
            // A synchronous run's heartbeat comes from its steps, which a
            // store locked by a backup may hold up: on its host, its pid
            // says it lives.
            NodeKind::Synchronous => {
                crate::owner::process_alive(&self.host, self.pid, &self.heartbeat_at)
            }
            // A background process beats from a thread of its own: silent
            // past the limit, it is dead (SPEC §7), even if its process
            // exists (stopped).
            NodeKind::Worker | NodeKind::Tick => {
                crate::owner::beating(&self.host, self.pid, &self.heartbeat_at)
            }
        }
    }

    /// Whether the owner of a batch (as `state` reads it) is alive: its
    /// run's node when it has one, else its process.
    pub fn owner_alive(
        store: &dyn NodeStore,
        state: &crate::store::batches::BatchState,
    ) -> super::Result<bool> {
        Ok(match &state.owner_worker {
            Some(w) => store
                .nodes()?
                .iter()
                .any(|n| n.worker_id == *w && n.alive()),
            None => state.owner_alive(),
        })
    }
}

/// The nodes running in this process now, by worker id.
static LIVE_HERE: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

fn live_here() -> std::sync::MutexGuard<'static, Vec<String>> {
    LIVE_HERE.lock().unwrap_or_else(|e| e.into_inner())
}

/// While it lives, the node `worker_id` runs in this process (see
/// [`NodeRecord::alive`]).
pub struct LiveHere(String);

impl LiveHere {
    pub fn new(worker_id: &str) -> LiveHere {
        live_here().push(worker_id.to_string());
        LiveHere(worker_id.to_string())
    }
}

impl Drop for LiveHere {
    fn drop(&mut self) {
        let mut live = live_here();
        if let Some(k) = live.iter().position(|w| *w == self.0) {
            live.swap_remove(k);
        }
    }
}

/// What a node is doing now: the unfinished batches it owns or holds
/// entities of, and how many entities it holds (IN_PROCESS).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeLoad {
    pub worker_id: String,
    pub batches: i64,
    pub in_process: i64,
}

/// The nodes table.
pub trait NodeStore {
    /// Registers a node (or registers it again, running), heartbeat now.
    /// Rows of synchronous runs that stopped more than a day ago go (a
    /// DEAD row stays: it fences its node off).
    fn register_node(&self, node: &NodeInfo) -> Result<()>;

    /// A sign of life. (A run's steps beat its node's heartbeat too.)
    fn beat(&self, worker_id: &str) -> Result<()>;

    /// Records how the node stands: stopping, or stopped. A node declared
    /// dead stays dead.
    fn set_node_state(&self, worker_id: &str, state: NodeState) -> Result<()>;

    /// Every node, newest first.
    fn nodes(&self) -> Result<Vec<NodeRecord>>;

    /// What every node that owns a batch, takes part in one, or holds
    /// entities is doing.
    fn node_loads(&self) -> Result<Vec<NodeLoad>>;
}

/// Whether a live worker that `fits` serves this store, and takes new
/// jobs (not one that is stopping: it may be on its way out, see the
/// worker's idle end).
pub fn worker_alive(
    store: &dyn NodeStore,
    fits: impl Fn(&crate::batch::NodeIdent) -> bool,
) -> crate::store::Result<bool> {
    Ok(store
        .nodes()?
        .iter()
        .any(|n| n.takes_work() && fits(&n.ident())))
}

/// Why a batch placed as `p` waits, if it does: no live worker may own its
/// job (unless `owned`: its job has an owner already), or none may process
/// its entities. For the Notes and BATCH_INFO.
pub fn waits_for(
    store: &dyn NodeStore,
    p: &crate::batch::Placement,
    owned: bool,
) -> crate::store::Result<Option<String>> {
    if !owned && !worker_alive(store, |n| p.may_own(n))? {
        return Ok(Some(format!(
            "it waits for {} to take its job, and no such worker runs: start one with `{}`",
            p.owners_wanted(),
            p.owner_hint()
        )));
    }
    if !worker_alive(store, |n| p.may_process(n))? {
        return Ok(Some(format!(
            "no live worker may process its entities ({}): start one with `{}`",
            p.processors_wanted(),
            p.processor_hint()
        )));
    }
    Ok(None)
}
