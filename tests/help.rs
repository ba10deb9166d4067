//! Every example HELP shows runs (SPEC §12): each example of the grammar
//! runs, as a user would paste it, on a copy of a fixture that has every
//! name the examples use: interfaces `crm` (SQLite) and `idsFile` (CSV),
//! the LUs `Customer`, `Account`, `Device` and `AUTODATA_DELTA` with synced
//! instances, the group `Customer.vip`, the files `ids.txt`, `codes.csv`,
//! `export_one.sh`, and the batch `c0ffee42-...` the control and monitoring
//! examples name. Where an example needs more (a batch still waiting, a
//! name to create that the fixture has), a setup says what, in the table
//! below; statements that are not built yet are skipped, and the examples
//! of parts not built yet must say so and nothing else.

use crate::common::{Test, grammar_examples};
use std::path::Path;

/// The batch the examples name.
const BID: &str = "c0ffee42-1d2e-4b7a-9f00-5a1b2c3d4e5f";

/// An asynchronous batch that waits for a node that never comes: still
/// active, so it can be paused, resumed, edited and cancelled.
const WAITING: &str = "BATCH Customer.('1001', '1002') FABRIC_COMMAND='echo ?' WITH ASYNC=true JOB_AFFINITY='elsewhere';";

/// The same, open: it takes appends until BATCH_WAITOFF.
const OPEN: &str = "BATCH Customer.('1001', '1002') FABRIC_COMMAND='echo ?' WITH ASYNC=true OPEN=true JOB_AFFINITY='elsewhere';";

/// A scheduled STATEMENT job with a UID, for the job examples.
const NIGHTLY_U1: &str = "STARTJOB STATEMENT NAME='nightly' UID='u1' EXEC_INTERVAL='0 2 * * *' COMMAND=$$ BATCH_LIST $$;";

/// A scheduled PROCESS job, for the job examples.
const CLEANUP: &str =
    "STARTJOB PROCESS NAME='cleanup' COMMAND='/bin/true' EXEC_INTERVAL='0 3 * * *';";

/// What an example needs besides the fixture, matched by the start of its
/// text: `c0ffee42` made by this statement instead of the fixture's
/// finished one (`bid`), statements run before it in the same session
/// (`before`: a control statement without a bid acts on the session's
/// last batch), and command-line flags.
struct Needs {
    starts: &'static str,
    bid: Option<&'static str>,
    before: &'static str,
    flags: &'static [&'static str],
}

const fn needs(starts: &'static str) -> Needs {
    Needs {
        starts,
        bid: None,
        before: "",
        flags: &[],
    }
}

const NEEDS: &[Needs] = &[
    // Creating what the fixture has: it goes first.
    Needs {
        before: "DROP LU Customer; DROP LU Account; DROP LU Device; DROP INTERFACE crm;",
        ..needs("CREATE INTERFACE crm")
    },
    Needs {
        before: "DROP LU Customer; DROP LU Account; DROP LU Device;",
        ..needs("DROP INTERFACE crm")
    },
    Needs {
        before: "DROP LU Customer;",
        ..needs("CREATE LU Customer")
    },
    Needs {
        before: "DROP INSTANCE GROUP Customer.vip;",
        ..needs("CREATE INSTANCE GROUP Customer.vip")
    },
    // A data center's batch, run by a node of that data center.
    Needs {
        flags: &["--dc", "DC1"],
        ..needs("batch Customer@DC1")
    },
    // Control statements: an active batch, in this session or named.
    Needs {
        before: WAITING,
        ..needs("BATCH_PAUSE;")
    },
    Needs {
        bid: Some(WAITING),
        ..needs("BATCH_PAUSE '")
    },
    Needs {
        bid: Some(WAITING),
        before: "BATCH_PAUSE 'c0ffee42';",
        ..needs("BATCH_RESUME")
    },
    Needs {
        bid: Some(WAITING),
        ..needs("BATCH_CANCEL")
    },
    Needs {
        before: WAITING,
        ..needs("CANCEL BATCH;")
    },
    Needs {
        bid: Some(WAITING),
        ..needs("cancel batch '")
    },
    Needs {
        before: "BATCH Customer.('1') FABRIC_COMMAND=\"shell 'test -e ran || { touch ran; exit 1; }; : ?'\";",
        ..needs("BATCH_RETRY;")
    },
    Needs {
        bid: Some(WAITING),
        before: "BATCH_CANCEL 'c0ffee42';",
        ..needs("BATCH_RETRY 'c0ffee42' ALLOW_CANCELLED")
    },
    Needs {
        before: WAITING,
        ..needs("BATCH_EDIT MAX_WORKERS")
    },
    Needs {
        bid: Some(WAITING),
        ..needs("BATCH_EDIT 'c0ffee42'")
    },
    Needs {
        bid: Some(OPEN),
        ..needs("BATCH_APPEND")
    },
    Needs {
        bid: Some(OPEN),
        ..needs("BATCH_WAITOFF")
    },
    // Job statements: the job they act on.
    Needs {
        before: NIGHTLY_U1,
        ..needs("STOPJOB STATEMENT")
    },
    Needs {
        before: CLEANUP,
        ..needs("stopjob process")
    },
    Needs {
        before: CLEANUP,
        ..needs("RESTARTJOB PROCESS")
    },
    Needs {
        before: "STARTJOB STATEMENT NAME='nightly' UID='u1' EXEC_INTERVAL='0 2 * * *' COMMAND=$$ BATCH_LIST $$; STOPJOB STATEMENT NAME='nightly' UID='u1';",
        ..needs("RESUMEJOB STATEMENT")
    },
    Needs {
        before: NIGHTLY_U1,
        ..needs("UPDATEJOB STATEMENT")
    },
    Needs {
        before: "STARTJOB PROCESS NAME='cleanup' UID='u1' COMMAND='/bin/true' EXEC_INTERVAL='0 3 * * *';",
        ..needs("UPDATEJOB PROCESS")
    },
    Needs {
        before: "SCHEDULE nightly CRON '0 2 * * *' DO BATCH_LIST;",
        ..needs("DROP SCHEDULE nightly")
    },
    Needs {
        before: "STARTJOB PROCESS NAME='nightly-sync' COMMAND='/bin/true' EXEC_INTERVAL='0 3 * * *';",
        ..needs("DROP SCHEDULE 'nightly-sync'")
    },
    Needs {
        before: "SCHEDULE nightly CRON '0 2 * * *' DO BATCH_LIST;",
        ..needs("JOB_HISTORY 'nightly'")
    },
    // A series, and a series with a run open.
    Needs {
        before: "WINDOW_SET 'orders_delta' FROM_DATE='2026-01-01';",
        ..needs("WINDOW_STATUS ")
    },
    Needs {
        before: "WINDOW_OPEN 'wf1';",
        ..needs("WINDOW_CLOSE")
    },
    // Series that succeeded today, for the waiting on them.
    Needs {
        before: "WINDOW_OPEN 'etl.extract'; WINDOW_CLOSE 'etl.extract';",
        ..needs("BATCH_WAIT NAME=")
    },
    Needs {
        before: "WINDOW_OPEN 'wf1';",
        ..needs("WINDOW_FAIL")
    },
];

/// Examples that cannot run on the fixture: each must fail saying why.
/// There is no PostgreSQL server at db.internal (the `.internal` domain
/// is never public, so the name does not resolve), and so no interface
/// named warehouse.
const MUST_FAIL: &[(&str, &str)] = &[
    (
        "create interface warehouse type postgres",
        "interface warehouse: cannot connect to postgres://etl@db.internal:5432/warehouse",
    ),
    (
        "CREATE OR REPLACE INSTANCE GROUP Customer.churned FROM warehouse",
        "no interface named warehouse",
    ),
    (
        "BATCH_APPEND c0ffee42 FROM crm",
        "window variables are set only for a named batch, WITH NAME='...')",
    ),
];

/// The fixture, made once: files, catalog, synced instances.
fn fixture(dir: &Path) {
    let crm = rusqlite::Connection::open(dir.join("crm.db")).unwrap();
    crm.execute_batch(
        "CREATE TABLE customer (id INTEGER PRIMARY KEY, name TEXT, tier TEXT, region TEXT,
             created_at TEXT, updated_at TEXT, synced_at TEXT);
         WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 50)
         INSERT INTO customer SELECT x, 'c' || x, CASE WHEN x % 5 = 0 THEN 'gold' ELSE 'bronze' END,
             CASE WHEN x % 2 = 0 THEN 'EU' ELSE 'US' END, '2026-11-01', '2026-11-01', NULL FROM c;
         INSERT INTO customer (id, name, tier) VALUES (1001, 'c1001', 'gold'), (1002, 'c1002', 'gold');
         CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER, total REAL);
         INSERT INTO orders VALUES (1, 42, 9.5), (2, 42, 3.25);
         CREATE TABLE address (customer_id INTEGER, kind TEXT, line TEXT);
         INSERT INTO address VALUES (42, 'home', '1 Main St'), (42, 'work', '2 Side St');
         CREATE TABLE account (account_id TEXT PRIMARY KEY, owner INTEGER);
         INSERT INTO account VALUES ('a1', 1), ('a2', 2);
         CREATE TABLE device (sn TEXT PRIMARY KEY, model TEXT);
         INSERT INTO device VALUES ('SN-0001-A', 'm1'), ('SN-1', 'm2'), ('SN-2', 'm3');",
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("data/ids")).unwrap();
    std::fs::copy(dir.join("crm.db"), dir.join("data/crm.db")).unwrap();
    std::fs::write(
        dir.join("data/ids/ids.csv"),
        "id|load_month\n1|2026-10\n2|2026-11\n3|2026-11\n",
    )
    .unwrap();
    std::fs::write(dir.join("codes.csv"), "code,label\n007,seven\n").unwrap();
    std::fs::write(dir.join("ids.txt"), "1\n2\n3\n").unwrap();
    for script in ["export_one.sh", "export_customer"] {
        std::fs::write(dir.join(script), "#!/bin/sh\necho \"exported $*\"\n").unwrap();
        std::process::Command::new("chmod")
            .args(["+x", dir.join(script).to_str().unwrap()])
            .status()
            .unwrap();
    }
    run(
        dir,
        "CREATE INTERFACE crm TYPE SQLITE PATH 'crm.db';
         CREATE INTERFACE idsFile TYPE CSV PATH 'data/ids' WITH DELIMITER='|';
         CREATE LU Customer FROM crm ROOT ('select id from customer')
             TABLE customer ('select * from customer where id = ?')
             TABLE orders ('select * from orders where customer_id = ?');
         CREATE LU Account FROM crm ROOT ('select account_id from account')
             TABLE account ('select * from account where account_id = ?');
         CREATE LU Device FROM crm ROOT ('select sn from device')
             TABLE device ('select * from device where sn = ?');
         CREATE LU AUTODATA_DELTA FROM idsFile ROOT ('select id from ids')
             TABLE ids ('select * from ids where id = ?');
         CREATE INSTANCE GROUP Customer.vip USING ('select id from customer where tier = ''gold''');
         MIGRATE Customer; MIGRATE Device;",
        None,
    );
}

/// A copy of the fixture at `base`, with the batch `c0ffee42`: finished,
/// or made by `bid`.
fn copy(base: &Path, bid: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", base.display()))
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    run(
        dir.path(),
        bid.unwrap_or("BATCH Customer.('1001', '1002') FABRIC_COMMAND='echo ?'"),
        Some(BID),
    );
    dir
}

/// Runs `script` in `dir`, which must succeed; its first batch gets the
/// id `bid`.
fn run(dir: &Path, script: &str, bid: Option<&str>) {
    let mut t = Test::new()
        .current_dir(dir)
        .args(["--home", dir.join("home").to_str().unwrap()])
        .args(["-c", script])
        .status(0);
    if let Some(bid) = bid {
        t = t.env("BATCHSH_TEST_BID", bid);
    }
    t.run();
}

#[test]
fn every_example_help_shows_runs_on_a_fixture_catalog() {
    let examples = grammar_examples(batchsh::syntax::grammar::TEXT);
    assert!(examples.len() > 80, "{}", examples.len());
    let base = tempfile::tempdir().unwrap();
    fixture(base.path());
    let mut ran = 0;
    let mut failed = Vec::new();
    for (section, example) in &examples {
        if !batchsh::syntax::keywords::is_built(section) {
            continue;
        }
        let text = example.trim();
        let need = NEEDS.iter().find(|n| text.starts_with(n.starts));
        let dir = copy(base.path(), need.and_then(|n| n.bid));
        let before = need.map_or("", |n| n.before);
        let script = format!("{before}\n{text}");
        let t = Test::new()
            .current_dir(dir.path())
            .args(["--home", dir.path().join("home").to_str().unwrap()])
            .args(need.map_or(&[][..], |n| n.flags).iter().copied())
            .args(["-c", &script]);
        let t = match MUST_FAIL
            .iter()
            .find(|(starts, _)| text.starts_with(starts))
        {
            Some((_, says)) => t.status(1).stderr_contains(says),
            None => t.status(0),
        };
        // Every example is tried; the failures are told together.
        if let Err(e) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| t.run())) {
            let why = e
                .downcast_ref::<String>()
                .cloned()
                .unwrap_or_else(|| "?".into());
            failed.push(format!("HELP {section}: {why}"));
        }
        ran += 1;
    }
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
    // No entry of the tables above outlives its example.
    let texts: Vec<&str> = examples.iter().map(|(_, e)| e.trim()).collect();
    for starts in NEEDS
        .iter()
        .map(|n| n.starts)
        .chain(MUST_FAIL.iter().map(|(s, _)| *s))
    {
        assert!(
            texts.iter().any(|t| t.starts_with(starts)),
            "no example starts with {starts:?}"
        );
    }
    assert!(ran > 60, "{ran} examples ran");
}
