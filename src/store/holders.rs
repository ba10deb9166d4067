//! Whose IN_PROCESS entities (rows and claims) an operation on a batch
//! takes back, for both stores: a retry takes back every one, a cancel, a
//! requeue of orphans or a failed run those of nodes found dead and its
//! own. Each store reads its claims and its node rows; what it decides
//! from them is here.

use super::nodes::{NodeRecord, NodeState};

/// Whose IN_PROCESS entities (rows and claims) an operation takes back.
#[derive(Clone, Copy)]
pub enum Holders<'a> {
    /// Every one: nobody may hold any (a finished batch).
    All,
    /// Those of nodes that are not alive (declared dead in passing), of
    /// claims that name no node, and those of `own` (a run that holds
    /// none in flight itself, or that fails).
    DeadAnd(Option<&'a str>),
    /// Only those of nodes other than `but` that are not alive (declared
    /// dead in passing): a run that owns the batch takes back a dead
    /// helper's claims while its own are in flight.
    Dead { but: &'a str },
}

impl<'a> Holders<'a> {
    /// The holder whose entities are not judged by its node (the
    /// caller's own), and whether they go back with the others; `None`
    /// for every holder ([`Holders::All`]).
    pub fn own(self) -> Option<(Option<&'a str>, bool)> {
        match self {
            Holders::All => None,
            Holders::DeadAnd(own) => Some((own, true)),
            Holders::Dead { but } => Some((Some(but), false)),
        }
    }

    /// Whether the IN_PROCESS entities of a holder other than `own` go
    /// back, judged by its node's row `node` (`None`: it has none):
    /// `None` when they stay its own (its node is alive), else whether its
    /// node is to be declared dead first (its row still shows it running:
    /// should it only have stalled, it then writes nothing more).
    pub fn judge(node: Option<&NodeRecord>) -> Option<bool> {
        match node {
            Some(n) if n.alive() => None,
            Some(n) => Some(n.state != NodeState::Dead),
            None => Some(false),
        }
    }

    /// The holders whose entities go back: those judged so (`dead`, as
    /// (worker id, declared dead now)), and `own`.
    pub fn taken_back(dead: Vec<(String, bool)>, own: Option<&str>) -> Vec<String> {
        dead.into_iter()
            .map(|(w, _)| w)
            .chain(own.map(str::to_string))
            .collect()
    }
}
