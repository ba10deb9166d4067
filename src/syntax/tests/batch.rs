//! BATCH, MIGRATE, EXPLAIN: targets, sources, options.

use super::*;
use crate::ast::{BatchStmt, CommandKind, Duration, EntityCommand, Selection, Source, Target};

fn batch(src: &str) -> BatchStmt {
    match one(src) {
        Statement::Batch(b) | Statement::Explain(b) => *b,
        other => panic!("not a batch: {other:?}"),
    }
}

fn sync(lu: &str) -> EntityCommand {
    EntityCommand {
        kind: CommandKind::SyncInstance { lu: name(lu) },
        span: Span::default(),
    }
}

#[test]
fn the_simplest_batch() {
    assert_eq!(
        batch("BATCH Customer FABRIC_COMMAND=\"sync_instance Customer.?\""),
        BatchStmt {
            migrate: false,
            target: Target {
                lu: name("Customer"),
                dc: None,
                selection: Selection::All
            },
            source: None,
            command: sync("Customer"),
            options: Options::default(),
        }
    );
}

#[test]
fn every_target_form() {
    let b = batch("BATCH Customer@DC1.vip FABRIC_COMMAND='echo ?'");
    assert_eq!(b.target.dc, Some(name("DC1")));
    assert_eq!(b.target.selection, Selection::Group(name("vip")));
    let ids = Selection::Ids(vec![text("1"), text("2"), text("x-3")]);
    assert_eq!(
        batch("BATCH C.('1', 2, x-3) FABRIC_COMMAND='echo ?'")
            .target
            .selection,
        ids
    );
    assert_eq!(
        batch("BATCH C ('1',2,x-3) FABRIC_COMMAND='echo ?'")
            .target
            .selection,
        ids
    );
    assert_eq!(
        batch("BATCH C@D ('1',2,x-3) FABRIC_COMMAND='echo ?'")
            .target
            .selection,
        ids
    );
}

#[test]
fn every_source_form() {
    assert_eq!(
        batch("BATCH C FROM FABRIC FABRIC_COMMAND='echo ?'").source,
        Some(Source::Fabric)
    );
    assert_eq!(
        batch(
            "batch C from crm using ('select id from t where x = ''a''') fabric_command='echo ?'"
        )
        .source,
        Some(Source::Query {
            interface: name("crm"),
            sql: text("select id from t where x = 'a'"),
        })
    );
}

#[test]
fn migrate_implies_sync_instance() {
    let b = batch("MIGRATE Customer FROM crm USING ('select 1') WITH MAX_RETRIES=2");
    assert!(b.migrate);
    assert_eq!(b.command, sync("Customer"));
    assert_eq!(b.options, opts(&[("MAX_RETRIES", Value::Int(2))]));
}

#[test]
fn explain_wraps_a_batch() {
    assert!(
        matches!(one("EXPLAIN BATCH C FABRIC_COMMAND='echo ?'"), Statement::Explain(b) if !b.migrate)
    );
    assert!(matches!(one("explain migrate C"), Statement::Explain(b) if b.migrate));
    let e = err("EXPLAIN BATCH_LIST");
    assert_eq!(expected(&e), vec!["BATCH", "MIGRATE"]);
}

#[test]
fn options_are_typed() {
    let b = batch(
        "BATCH C FABRIC_COMMAND='echo ?' WITH ASYNC='TRUE', allow_multiply=false \
         MAX_WORKERS_PER_NODE='8' RETRY_DELAY='1.00:00:00' ENTITY_TIMEOUT=500ms \
         MAX_FAILURES='2.5%' REPROCESS_HOURS=1.5 BIND_PARAMS_JSON='[\"a\", 1]' \
         GENERATE_IIDS_FIRST=true AFFINITY='n1,n2' CHUNK_SIZE=-1",
    );
    assert_eq!(
        b.options,
        opts(&[
            ("ASYNC", Value::Bool(true)),
            ("ALLOW_MULTIPLE", Value::Bool(false)),
            ("MAX_WORKERS_PER_NODE", Value::Int(8)),
            ("RETRY_DELAY", Value::Duration(Duration(86_400_000))),
            ("ENTITY_TIMEOUT", Value::Duration(Duration(500))),
            ("MAX_FAILURES", Value::Percent(2.5)),
            ("REPROCESS_HOURS", Value::Number(1.5)),
            ("BIND_PARAMS_JSON", Value::Json(serde_json::json!(["a", 1]))),
            ("GENERATE_ENTITIES_FIRST", Value::Bool(true)),
            ("AFFINITY", Value::Str("n1,n2".into())),
            ("CHUNK_SIZE", Value::Int(-1)),
        ])
    );
    assert_eq!(
        batch("BATCH C FABRIC_COMMAND='echo ?' WITH MAX_FAILURES=10").options,
        opts(&[("MAX_FAILURES", Value::Int(10))])
    );
}

#[test]
fn missing_or_misspelled_fabric_command() {
    let e = err("BATCH Customer");
    assert_eq!(expected(&e), vec!["FROM", "FABRIC_COMMAND"]);
    let src = "BATCH Customer FROM FABRIC WITH ASYNC=true";
    let e = err(src);
    assert_eq!(at(src, &e), (27, "WITH"));
    assert!(
        matches!(&e.kind, ErrorKind::Invalid(m) if m.starts_with("WITH and its options come after the command")),
        "{:?}",
        e.kind
    );
    let e = err("BATCH Customer FROM FABRIC");
    assert_eq!(expected(&e), vec!["FABRIC_COMMAND"]);
    let src = "BATCH Customer FABRIK_COMMAND='echo ?'";
    let e = err(src);
    assert_eq!(at(src, &e), (15, "FABRIK_COMMAND"));
    assert!(matches!(
        e.kind,
        ErrorKind::UnknownOption {
            suggestion: Some("FABRIC_COMMAND"),
            ..
        }
    ));
}

#[test]
fn with_needs_an_option_and_options_need_values() {
    let e = err("BATCH C FABRIC_COMMAND='echo ?' WITH");
    assert_eq!(expected(&e), vec!["an option"]);
    let src = "BATCH C FABRIC_COMMAND='echo ?' WITH ASYNC=";
    assert_eq!(expected(&err(src)), vec!["a value"]);
    let src = "BATCH C FABRIC_COMMAND='echo ?' WITH MAX_RETRIES=three";
    let e = err(src);
    assert_eq!(at(src, &e), (49, "three"));
    assert!(
        matches!(e.kind, ErrorKind::InvalidValue { ref option, .. } if option == "MAX_RETRIES")
    );
    let src = "BATCH C FABRIC_COMMAND='echo ?' WITH MAX_FAILURES='120%'";
    assert!(matches!(err(src).kind, ErrorKind::InvalidValue { .. }));
    let src = "BATCH C FABRIC_COMMAND='echo ?' WITH BIND_PARAMS_JSON='{\"a\":1}'";
    assert!(matches!(err(src).kind, ErrorKind::InvalidValue { .. }));
    let src = "BATCH C FABRIC_COMMAND='echo ?' WITH ALLOW_MULTIPLE=true ALLOW_MULTIPLY=true";
    assert_eq!(
        err(src).kind,
        ErrorKind::DuplicateOption {
            name: "ALLOW_MULTIPLE"
        }
    );
}

#[test]
fn keywords_need_word_boundaries() {
    // `FROMX` is a word of its own, not FROM followed by X.
    let e = err("BATCH C FROMX crm USING ('x') FABRIC_COMMAND='echo ?'");
    assert_eq!(expected(&e), vec!["FROM", "FABRIC_COMMAND"]);
}

#[test]
fn id_lists_must_close() {
    let src = "BATCH C.('1' '2') FABRIC_COMMAND='echo ?'";
    let e = err(src);
    assert_eq!(at(src, &e), (13, ""));
    assert_eq!(expected(&e), vec!["','", "')'"]);
    assert_eq!(
        expected(&err("BATCH C.() FABRIC_COMMAND='echo ?'")),
        vec!["an entity id"]
    );
    assert_eq!(
        expected(&err("BATCH C.;")),
        vec!["an instance group name", "'('"]
    );
}
