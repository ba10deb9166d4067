//! The analysis step, table-style: statement text -> typed options, a
//! plan, or the error with the text its span points at.

use super::*;
use crate::ast::{Options, Statement};
use crate::plan::{EntitySource, FailureLimit};
use crate::source::Param;
use crate::store::sqlite::SqliteStore;
use crate::store::{GroupDef, InterfaceDef, LuDef, now};

/// The statement `src` holds (one, parsed whole).
fn statement(src: &str) -> Statement {
    let mut stmts = crate::syntax::parse(src).expect("the statement parses");
    assert_eq!(stmts.len(), 1, "{src}");
    stmts.remove(0).kind
}

fn batch_stmt(src: &str) -> BatchStmt {
    match statement(src) {
        Statement::Batch(b) | Statement::Explain(b) => *b,
        other => panic!("not a BATCH: {other:?}"),
    }
}

/// The options of any statement that has them.
fn options(src: &str) -> Options {
    match statement(src) {
        Statement::Batch(b) => b.options,
        Statement::BatchRetry { options, .. }
        | Statement::BatchEdit { options, .. }
        | Statement::CreateInterface { options, .. } => options,
        other => panic!("no options: {other:?}"),
    }
}

/// The error's message and the text under its span.
fn told(src: &str, e: AnalyzeError) -> (String, String) {
    let (start, end) = e.span.range();
    (e.to_string(), src[start..end].to_string())
}

const ECHO: &str = "BATCH Customer FABRIC_COMMAND='echo ?' WITH ";

#[test]
fn batch_options_decode_to_typed_fields() {
    let cases: Vec<(&str, BatchOptions)> = vec![
        (
            "MAX_RETRIES=0",
            BatchOptions {
                max_retries: Some(0),
                ..Default::default()
            },
        ),
        (
            "MAX_WORKERS_PER_NODE=4 CHUNK_SIZE=50 MAX_RETRIES=2 RETRY_DELAY='500ms'",
            BatchOptions {
                max_workers_per_node: Some(4),
                chunk_size: Some(50),
                max_retries: Some(2),
                retry_delay: Some(Duration::from_millis(500)),
                ..Default::default()
            },
        ),
        (
            "ENTITY_TIMEOUT='2m', MAX_FAILURES=3, ESTIMATED_ENTITIES_COUNT=-1",
            BatchOptions {
                entity_timeout: Some(Duration::from_secs(120)),
                max_failures: Some(FailureLimit::Count(3)),
                estimated_entities_count: Some(-1),
                ..Default::default()
            },
        ),
        (
            "MAX_FAILURES='12.5%'",
            BatchOptions {
                max_failures: Some(FailureLimit::Percent(12.5)),
                ..Default::default()
            },
        ),
        (
            "GENERATE_IIDS_FIRST=true ALLOW_MULTIPLY='true' ASYNC=false",
            BatchOptions {
                generate_entities_first: true,
                allow_multiple: true,
                ..Default::default()
            },
        ),
        (
            "ALLOW_MULTIPLE=false ON_DONE='echo $STATUS'",
            BatchOptions {
                on_done: Some("echo $STATUS".into()),
                ..Default::default()
            },
        ),
        (
            "BIND_PARAMS='a,b'",
            BatchOptions {
                bind_params: vec![Param::Text("a".into()), Param::Text("b".into())],
                ..Default::default()
            },
        ),
        // The separator may come first: the pair is read once all is seen.
        (
            "BIND_PARAMS_SEPARATOR='|' BIND_PARAMS='a,b|c'",
            BatchOptions {
                bind_params: vec![Param::Text("a,b".into()), Param::Text("c".into())],
                ..Default::default()
            },
        ),
        ("BIND_PARAMS_SEPARATOR='|'", BatchOptions::default()),
        // OPEN=true implies ASYNC (SPEC §4), given or not.
        (
            "OPEN=true",
            BatchOptions {
                open: true,
                asynchronous: true,
                ..Default::default()
            },
        ),
        (
            "ASYNC=true OPEN=true",
            BatchOptions {
                open: true,
                asynchronous: true,
                ..Default::default()
            },
        ),
        ("OPEN=false ASYNC=false", BatchOptions::default()),
        (
            "BIND_PARAMS_JSON='[1, \"x\", null]'",
            BatchOptions {
                bind_params: vec![Param::Int(1), Param::Text("x".into()), Param::Null],
                ..Default::default()
            },
        ),
    ];
    for (with, want) in cases {
        let src = format!("{ECHO}{with}");
        let got = BatchOptions::decode(&options(&src)).unwrap_or_else(|e| panic!("{src}: {e}"));
        assert_eq!(got, want, "{src}");
    }
    assert_eq!(
        BatchOptions::decode(&options("BATCH Customer FABRIC_COMMAND='echo ?'")).unwrap(),
        BatchOptions::default()
    );
}

#[test]
fn batch_option_faults_are_told_at_the_option() {
    let cases = [
        (
            "MAX_WORKERS_PER_NODE=0",
            "MAX_WORKERS_PER_NODE must be 1 or more, not 0",
            "MAX_WORKERS_PER_NODE=0",
        ),
        (
            "CHUNK_SIZE=-3",
            "CHUNK_SIZE must be 1 or more, not -3",
            "CHUNK_SIZE=-3",
        ),
        (
            "MAX_RETRIES=-1",
            "MAX_RETRIES cannot be negative",
            "MAX_RETRIES=-1",
        ),
        // OPEN=true runs in a worker, waiting for appends: ASYNC=false and
        // GENERATE_ENTITIES_FIRST=true contradict it.
        (
            "ASYNC=false OPEN=true",
            "OPEN=true runs the batch asynchronously (a worker runs it, and other processes \
             append to it): drop ASYNC=false, or drop OPEN=true to run the batch here",
            "ASYNC=false",
        ),
        (
            "OPEN=true GENERATE_ENTITIES_FIRST=true",
            "GENERATE_ENTITIES_FIRST=true cannot go with OPEN=true: an open batch's entity \
             list is whole only once BATCH_WAITOFF closes it, so nothing would run until \
             then; drop one of them",
            "GENERATE_ENTITIES_FIRST=true",
        ),
        (
            "MAX_RETRIES=1 AFFINITY=' , '",
            "AFFINITY names no node: give node names, DCs or IP addresses, separated by commas (or leave the option out: any node)",
            "AFFINITY=' , '",
        ),
        (
            "MAX_NODES=0",
            "MAX_NODES must be 1 or more, not 0",
            "MAX_NODES=0",
        ),
        (
            "OUTPUT_LIMIT='1XB'",
            "OUTPUT_LIMIT must be a size of 1 byte or more, as '1MB', '64KB' or '4096', not '1XB'",
            "OUTPUT_LIMIT='1XB'",
        ),
        (
            "OUTPUT_LIMIT='0'",
            "OUTPUT_LIMIT must be a size of 1 byte or more, as '1MB', '64KB' or '4096', not '0'",
            "OUTPUT_LIMIT='0'",
        ),
        (
            "BIND_PARAMS_JSON='[1]' BIND_PARAMS='a'",
            "give BIND_PARAMS or BIND_PARAMS_JSON, not both",
            "BIND_PARAMS_JSON='[1]'",
        ),
        // A series setting without NAME, after the values.
        (
            "REPROCESS_HOURS=2",
            "REPROCESS_HOURS is a setting of a named series: add NAME='...' to make the batch \
             a run of one (SPEC §9), or drop it",
            "REPROCESS_HOURS=2",
        ),
        (
            "NAME='nightly' REPROCESS_HOURS=1.5",
            "REPROCESS_HOURS must be a whole number of hours, 0 or more, not 1.5",
            "REPROCESS_HOURS=1.5",
        ),
        // Values in the order written.
        (
            "CHUNK_SIZE=0 MAX_WORKERS_PER_NODE=0",
            "CHUNK_SIZE must be 1 or more, not 0",
            "CHUNK_SIZE=0",
        ),
    ];
    for (with, message, under) in cases {
        let src = format!("{ECHO}{with}");
        let e = BatchOptions::decode(&options(&src)).expect_err(&src);
        assert_eq!(told(&src, e), (message.into(), under.into()), "{src}");
    }
    // A JSON array the binding cannot take: the source layer's message.
    let src = format!("{ECHO}BIND_PARAMS_JSON='[[1]]'");
    let (message, under) = told(&src, BatchOptions::decode(&options(&src)).unwrap_err());
    assert!(message.contains("BIND_PARAMS_JSON"), "{message}");
    assert_eq!(under, "BIND_PARAMS_JSON='[[1]]'");
}

/// A BATCH option added to the parser's table without a field here would
/// be accepted and then ignored: every one is decoded or refused.
#[test]
fn every_batch_option_is_decoded_or_refused() {
    use crate::syntax::keywords::{BATCH_OPTIONS, OptType};
    for spec in BATCH_OPTIONS {
        let value = match spec.ty {
            OptType::Bool => "true",
            OptType::Int | OptType::Number | OptType::IntOrPercent => "7",
            OptType::Duration => "'7s'",
            OptType::JsonArray => "'[\"7\"]'",
            _ => "'7'",
        };
        // The separator counts only with the values it splits.
        let with = match spec.name {
            "BIND_PARAMS_SEPARATOR" => format!("BIND_PARAMS='a7b' {}={value}", spec.name),
            name => format!("{name}={value}"),
        };
        let src = format!("{ECHO}{with}");
        match BatchOptions::decode(&options(&src)) {
            Ok(decoded) => {
                assert_ne!(decoded, BatchOptions::default(), "{src} was ignored");
                if spec.name == "BIND_PARAMS_SEPARATOR" {
                    assert_eq!(decoded.bind_params.len(), 2, "{src}");
                }
            }
            Err(e) => {
                assert!(
                    e.to_string().contains("is a setting of a named series"),
                    "{src}: {e}"
                )
            }
        }
    }
}

#[test]
fn control_and_interface_options_decode_to_typed_fields() {
    let retry = |src: &str| RetryOptions::decode(&options(src));
    assert!(!retry("BATCH_RETRY 'c0ffee42'").allow_cancelled);
    assert!(!retry("BATCH_RETRY ALLOW_CANCELLED=false").allow_cancelled);
    assert!(retry("BATCH_RETRY 'c0ffee42' ALLOW_CANCELLED=true").allow_cancelled);

    let edit = |src: &str| EditOptions::decode(&options(src), Span::default());
    assert_eq!(
        edit("BATCH_EDIT 'c0ffee42' MAX_WORKERS_PER_NODE = 16").unwrap(),
        EditOptions {
            max_workers_per_node: 16
        }
    );
    let src = "BATCH_EDIT MAX_WORKERS_PER_NODE=0";
    assert_eq!(
        told(src, edit(src).unwrap_err()),
        (
            "MAX_WORKERS_PER_NODE must be 1 or more, not 0".into(),
            "MAX_WORKERS_PER_NODE=0".into()
        )
    );

    let csv = "CREATE INTERFACE ids TYPE CSV PATH 'ids.csv'";
    let interface = |with: &str| InterfaceOptions::decode(&options(&format!("{csv} {with}")));
    assert_eq!(interface("").unwrap(), InterfaceOptions::default());
    assert_eq!(
        interface("WITH HEADER=false DELIMITER=';' TYPES=false").unwrap(),
        InterfaceOptions {
            header: false,
            delimiter: ';',
            types: false,
        }
    );
    let src = format!("{csv} WITH DELIMITER='é'");
    let e = InterfaceOptions::decode(&options(&src)).unwrap_err();
    assert_eq!(
        told(&src, e),
        (
            "DELIMITER must be one ASCII character, not 'é'".into(),
            "DELIMITER='é'".into()
        )
    );
}

/// A store whose catalog has an interface `crm` (a CSV file that makes a
/// `customer` table), an LU `Customer` on it, and its group `vip`.
struct Catalog {
    _dir: tempfile::TempDir,
    store: SqliteStore,
}

fn catalog() -> Catalog {
    let dir = tempfile::tempdir().unwrap();
    let crm = dir.path().join("customer.csv");
    std::fs::write(&crm, "id\n1\n2\n").unwrap();
    let store = SqliteStore::open(&dir.path().join("store.db")).unwrap();
    let interface = InterfaceDef {
        name: "crm".into(),
        kind: crate::ast::InterfaceKind::Csv,
        location: crm.to_string_lossy().into_owned(),
        header: true,
        delimiter: ',',
        types: true,
        created_at: now(),
    };
    store.create_interface(&interface, false).unwrap();
    let lu = LuDef {
        name: "Customer".into(),
        interface: "crm".into(),
        root_sql: "select id from customer".into(),
        tables: Vec::new(),
        created_at: now(),
    };
    store.create_lu(&lu, false).unwrap();
    let group = GroupDef {
        lu: "Customer".into(),
        name: "vip".into(),
        interface: None,
        sql: "select id from customer where id = '1'".into(),
        created_at: now(),
    };
    store.create_group(&group, false).unwrap();
    Catalog { _dir: dir, store }
}

impl Catalog {
    /// `src` planned for a node of 4 workers.
    fn plan(&self, src: &str) -> Result<Plan> {
        let stmt = crate::syntax::parse(src).unwrap().remove(0);
        batch(&self.store, &batch_stmt(src), stmt.span, 4)
    }
}

#[test]
fn output_limit_is_a_size_in_bytes() {
    for (given, bytes) in [
        ("'1MB'", 1 << 20),
        ("'64KB'", 64 << 10),
        ("'64 kib'", 64 << 10),
        ("'2G'", 2 << 30),
        ("'4096'", 4096),
        ("'10b'", 10),
    ] {
        let src = format!("{ECHO}OUTPUT_LIMIT={given}");
        let o = BatchOptions::decode(&options(&src)).expect(&src);
        assert_eq!(o.output_limit, Some(bytes), "{src}");
    }
}

#[test]
fn where_a_batch_may_run_is_its_placement() {
    let c = catalog();
    let p = c
        .plan(
            "BATCH Customer@DC1 FABRIC_COMMAND='echo ?' \
             WITH AFFINITY='a, 10.0.0.1,' JOB_AFFINITY='b' MAX_NODES=2 ASYNC=true",
        )
        .unwrap();
    assert_eq!(
        p.placement,
        crate::batch::Placement {
            affinity: vec!["a".into(), "10.0.0.1".into()],
            job_affinity: vec!["b".into()],
            dc: Some("DC1".into()),
            max_nodes: Some(2),
        }
    );
    let p = c.plan("BATCH Customer FABRIC_COMMAND='echo ?'").unwrap();
    assert!(p.placement.is_anywhere());
}

#[test]
fn a_batch_becomes_a_plan_with_defaults_and_its_workers_as_asked() {
    let c = catalog();
    let p = c
        .plan("BATCH Customer.vip FABRIC_COMMAND='echo ?'")
        .unwrap();
    assert_eq!(p.lu, "Customer");
    assert!(
        matches!(&p.source, EntitySource::Query { origin, .. } if origin == "instance group Customer.vip")
    );
    assert_eq!(
        (p.workers, p.node_workers, p.workers_capped_from),
        (4, 1024, None),
        "the default: the node's default count, BATCH_EDIT up to 1024"
    );
    assert_eq!((p.max_retries, p.retry_delay), (0, Duration::from_secs(1)));
    assert_eq!(p.arguments, serde_json::json!({}));
    assert_eq!(p.command_text, "BATCH Customer.vip FABRIC_COMMAND='echo ?'");

    let p = c
        .plan(
            "BATCH Customer FROM crm USING ('select id from customer where id > ?') \
             FABRIC_COMMAND='sql crm ''select ?''' \
             WITH MAX_WORKERS_PER_NODE=9 BIND_PARAMS='0' MAX_FAILURES='10%'",
        )
        .unwrap();
    assert_eq!(
        (p.workers, p.workers_capped_from),
        (9, None),
        "more than the default: as many as asked"
    );
    assert_eq!(p.max_failures, Some(FailureLimit::Percent(10.0)));
    assert!(
        matches!(&p.source, EntitySource::Query { params, .. } if params == &[Param::Text("0".into())])
    );
    assert_eq!(p.command_interface.map(|i| i.name), Some("crm".into()));
    assert_eq!(p.arguments["MAX_WORKERS_PER_NODE"], 9);

    let p = c
        .plan("MIGRATE Customer('1','2') WITH MAX_WORKERS_PER_NODE=2")
        .unwrap();
    assert!(matches!(&p.source, EntitySource::Ids(ids) if ids.len() == 2));
    assert_eq!(p.command_lu.map(|l| l.name), Some("Customer".into()));
    assert_eq!((p.workers, p.workers_capped_from), (2, None));

    let p = c
        .plan("BATCH Customer FABRIC_COMMAND='echo ?' WITH MAX_WORKERS_PER_NODE=5000")
        .unwrap();
    assert_eq!(
        (p.workers, p.workers_capped_from),
        (1024, Some(5000)),
        "capped at the most a batch runs on one node, and said"
    );
}

#[test]
fn a_batch_that_means_nothing_is_told_at_its_fault() {
    let c = catalog();
    let cases = [
        (
            "BATCH Custmer FABRIC_COMMAND='echo ?'",
            "no LU named Custmer (did you mean Customer?)",
            "Custmer",
        ),
        (
            "BATCH Customer.nope FABRIC_COMMAND='echo ?'",
            "no instance group named Customer.nope",
            "nope",
        ),
        (
            "BATCH Customer.vip FROM FABRIC FABRIC_COMMAND='echo ?'",
            "give the entities once: an id list or a group, or FROM ..., not both",
            "Customer",
        ),
        (
            "BATCH Customer FROM nowhere USING ('select 1') FABRIC_COMMAND='echo ?'",
            "no interface named",
            "nowhere",
        ),
        (
            "BATCH Customer FROM crm USING ('delete from customer') FABRIC_COMMAND='echo ?'",
            "the query would change data; a source query must only read",
            "'delete from customer'",
        ),
        (
            "BATCH Customer FABRIC_COMMAND=\"exec 'x' :from_date ?\"",
            ":from_date is a window variable, set only for a named batch",
            "\"exec 'x' :from_date ?\"",
        ),
        (
            "BATCH Customer FABRIC_COMMAND=\"sql nowhere 'select ?'\"",
            "no interface named",
            "nowhere",
        ),
        (
            "BATCH Customer FABRIC_COMMAND='sync_instance Other.?'",
            "no LU named",
            "Other",
        ),
        // A stored query is named: the caret cannot show it.
        (
            "BATCH Customer FABRIC_COMMAND='echo ?' WITH BIND_PARAMS='1'",
            "the ROOT query of LU Customer: ",
            "Customer",
        ),
        (
            "BATCH Customer FABRIC_COMMAND='echo ?' WITH CHUNK_SIZE=0",
            "CHUNK_SIZE must be 1 or more, not 0",
            "CHUNK_SIZE=0",
        ),
    ];
    for (src, message, under) in cases {
        let e = c.plan(src).expect_err(src);
        let (got, got_under) = told(src, e);
        assert!(got.starts_with(message), "{src}: {got}");
        assert_eq!(got_under, under, "{src}: {got}");
    }
}
