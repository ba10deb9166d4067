//! Where a batch may run (SPEC §4, §7): `JOB_AFFINITY` (who may own its
//! job: read the source, decide its status), `AFFINITY` (who may process
//! its entities), `@DC` (only that data center's nodes, for both) and
//! `MAX_NODES` (how many nodes take part at once). An entry of an
//! affinity list matches a node when it equals the node's name, its DC
//! (both without regard to case) or one of its host's IP addresses
//! (Fabric's node ids are IP addresses).

use serde::{Deserialize, Serialize};

/// Where a batch may run; the default: anywhere.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// `AFFINITY`: the nodes that may process entities; empty: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub affinity: Vec<String>,
    /// `JOB_AFFINITY`: the nodes that may own the job; empty: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub job_affinity: Vec<String>,
    /// `@DC`: only this data center's nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dc: Option<String>,
    /// `MAX_NODES`: at most this many nodes at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_nodes: Option<usize>,
}

/// Who a node is, for placement: its name, its DC, its host's addresses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeIdent {
    pub node: String,
    pub dc: String,
    pub addrs: Vec<String>,
}

impl NodeIdent {
    /// Whether an affinity entry names this node.
    pub fn matches(&self, entry: &str) -> bool {
        entry.eq_ignore_ascii_case(&self.node)
            || entry.eq_ignore_ascii_case(&self.dc)
            || self.addrs.iter().any(|a| a == entry)
    }

    /// This host's IP addresses (loopback included: `127.0.0.1` names the
    /// local node), as text.
    pub fn host_addrs() -> Vec<String> {
        let mut addrs: Vec<String> = if_addrs::get_if_addrs()
            .map(|ifs| ifs.iter().map(|i| i.ip().to_string()).collect())
            .unwrap_or_default();
        addrs.sort();
        addrs.dedup();
        addrs
    }
}

/// The entries of an affinity option: a comma list, blanks dropped.
pub fn entries(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(str::to_string)
        .collect()
}

impl Placement {
    /// Anywhere: no option restricts it.
    /// Where a job of `STARTJOB` may be fired: its `AFFINITY` (nodes,
    /// DCs or addresses, comma-separated), else anywhere.
    pub fn of_job(affinity: Option<&str>) -> Placement {
        Placement {
            job_affinity: affinity.map(entries).unwrap_or_default(),
            ..Placement::default()
        }
    }

    pub fn is_anywhere(&self) -> bool {
        *self == Placement::default()
    }

    fn in_dc(&self, n: &NodeIdent) -> bool {
        self.dc
            .as_ref()
            .is_none_or(|dc| dc.eq_ignore_ascii_case(&n.dc))
    }

    /// Whether node `n` may own the batch's job.
    pub fn may_own(&self, n: &NodeIdent) -> bool {
        self.in_dc(n)
            && (self.job_affinity.is_empty() || self.job_affinity.iter().any(|e| n.matches(e)))
    }

    /// Whether node `n` may process the batch's entities.
    pub fn may_process(&self, n: &NodeIdent) -> bool {
        self.in_dc(n) && (self.affinity.is_empty() || self.affinity.iter().any(|e| n.matches(e)))
    }

    /// The nodes that may own the job, in words ("node or DC
    /// '10.21.2.102'", "a node of DC 'DC1'").
    pub fn owners_wanted(&self) -> String {
        wanted(&self.job_affinity, self.dc.as_deref())
    }

    /// The nodes that may process entities, in words.
    pub fn processors_wanted(&self) -> String {
        wanted(&self.affinity, self.dc.as_deref())
    }

    /// How to start a worker that may own the job.
    pub fn owner_hint(&self) -> String {
        hint(&self.job_affinity, self.dc.as_deref())
    }

    /// How to start a worker that may process entities.
    pub fn processor_hint(&self) -> String {
        hint(&self.affinity, self.dc.as_deref())
    }
}

fn quoted(list: &[String]) -> String {
    list.iter()
        .map(|e| format!("'{e}'"))
        .collect::<Vec<_>>()
        .join(" or ")
}

fn wanted(list: &[String], dc: Option<&str>) -> String {
    match (list.is_empty(), dc) {
        (true, None) => "any node".into(),
        (true, Some(dc)) => format!("a node of DC '{dc}'"),
        (false, None) => format!("node or DC {}", quoted(list)),
        (false, Some(dc)) => format!("node or DC {} in DC '{dc}'", quoted(list)),
    }
}

fn hint(list: &[String], dc: Option<&str>) -> String {
    let dc_flag = dc
        .map(|dc| format!(" --dc {}", shell_word(dc)))
        .unwrap_or_default();
    match list.first() {
        Some(e) => format!("batchsh worker --node {}{dc_flag}", shell_word(e)),
        None => format!("batchsh worker{dc_flag}"),
    }
}

/// `word` as a shell reads it back: as it is when it is plain, else in
/// single quotes.
fn shell_word(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "._-:@/+=".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, dc: &str, addrs: &[&str]) -> NodeIdent {
        NodeIdent {
            node: name.into(),
            dc: dc.into(),
            addrs: addrs.iter().map(|a| a.to_string()).collect(),
        }
    }

    #[test]
    fn an_entry_matches_the_name_the_dc_or_an_address() {
        let n = node("box1", "DC1", &["10.21.2.102", "127.0.0.1"]);
        for (entry, matches) in [
            ("box1", true),
            ("BOX1", true),
            ("dc1", true),
            ("10.21.2.102", true),
            ("127.0.0.1", true),
            ("10.21.2.10", false),
            ("box", false),
            ("DC2", false),
        ] {
            assert_eq!(n.matches(entry), matches, "{entry}");
        }
    }

    #[test]
    fn who_may_own_and_who_may_process() {
        let a = node("a", "DC1", &["10.0.0.1"]);
        let b = node("b", "DC2", &["10.0.0.2"]);
        let p = |affinity: &str, job: &str, dc: Option<&str>| Placement {
            affinity: entries(affinity),
            job_affinity: entries(job),
            dc: dc.map(str::to_string),
            max_nodes: None,
        };
        // (placement, a owns, a processes, b owns, b processes)
        let table = [
            (p("", "", None), true, true, true, true),
            (p("a", "", None), true, true, true, false),
            (p("", "10.0.0.2", None), false, true, true, true),
            (p("DC2, a", "b", None), false, true, true, true),
            (p("", "", Some("dc1")), true, true, false, false),
            (p("b", "", Some("DC1")), true, false, false, false),
        ];
        for (pl, ao, ap, bo, bp) in table {
            assert_eq!(
                (
                    pl.may_own(&a),
                    pl.may_process(&a),
                    pl.may_own(&b),
                    pl.may_process(&b)
                ),
                (ao, ap, bo, bp),
                "{pl:?}"
            );
        }
    }

    #[test]
    fn words_and_hints_name_what_is_waited_for() {
        let p = Placement {
            job_affinity: entries("10.21.2.102"),
            ..Placement::default()
        };
        assert_eq!(p.owners_wanted(), "node or DC '10.21.2.102'");
        assert_eq!(p.owner_hint(), "batchsh worker --node 10.21.2.102");
        let p = Placement {
            dc: Some("DC1".into()),
            ..Placement::default()
        };
        assert_eq!(p.owners_wanted(), "a node of DC 'DC1'");
        assert_eq!(p.owner_hint(), "batchsh worker --dc DC1");
        let p = Placement {
            job_affinity: entries("n1;rm -rf x"),
            ..Placement::default()
        };
        assert_eq!(p.owner_hint(), "batchsh worker --node 'n1;rm -rf x'");
        assert_eq!(shell_word("it's"), "'it'\\''s'");
        assert!(Placement::default().is_anywhere());
        assert_eq!(
            serde_json::to_string(&Placement::default()).unwrap(),
            "{}",
            "stored as the options that are set"
        );
    }
}
