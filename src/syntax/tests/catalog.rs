//! Interfaces, LUs, instance groups, SHOW / DROP / DESCRIBE / GET.

use super::*;
use crate::ast::{InterfaceKind, LuTable};

#[test]
fn create_interface_forms() {
    assert_eq!(
        one(
            "create or replace interface ids type csv path 'data/ids.csv' with header=false, delimiter=';'"
        ),
        Statement::CreateInterface {
            or_replace: true,
            name: name("ids"),
            kind: InterfaceKind::Csv,
            location: text("data/ids.csv"),
            options: opts(&[
                ("HEADER", Value::Bool(false)),
                ("DELIMITER", Value::Str(";".into()))
            ]),
        }
    );
    assert!(matches!(
        one("CREATE INTERFACE w TYPE POSTGRES URL 'postgres://u@h/db'"),
        Statement::CreateInterface {
            kind: InterfaceKind::Postgres,
            ..
        }
    ));
}

#[test]
fn create_interface_errors() {
    let src = "CREATE INTERFACE x TYPE MYSQL PATH 'a'";
    let e = err(src);
    assert_eq!(at(src, &e), (24, "MYSQL"));
    assert_eq!(expected(&e), vec!["SQLITE", "CSV", "POSTGRES"]);
    // POSTGRES takes a URL, SQLITE a PATH.
    assert_eq!(
        expected(&err("CREATE INTERFACE x TYPE POSTGRES PATH 'a'")),
        vec!["URL"]
    );
    assert_eq!(
        expected(&err("CREATE INTERFACE x TYPE SQLITE URL 'a'")),
        vec!["PATH"]
    );
    assert!(matches!(
        err("CREATE INTERFACE x TYPE SQLITE PATH 'a' WITH HEADER=true").kind,
        ErrorKind::Invalid(_)
    ));
    let e = err("CREATE INTERFACE x TYPE CSV PATH 'a' WITH DELIMITER=';;'");
    assert!(matches!(e.kind, ErrorKind::InvalidValue { .. }));
    assert_eq!(
        expected(&err("CREATE THING x")),
        vec!["OR", "INTERFACE", "LU", "INSTANCE"]
    );
}

#[test]
fn create_lu_with_tables_and_keys() {
    assert_eq!(
        one("CREATE LU Customer FROM crm ROOT ('select id from c') \
             TABLE customer ('select * from c where id = ?') \
             TABLE address KEY (customer_id, kind) ('select * from a where customer_id = ?')"),
        Statement::CreateLu {
            or_replace: false,
            name: name("Customer"),
            interface: name("crm"),
            root: text("select id from c"),
            tables: vec![
                LuTable {
                    name: name("customer"),
                    key: vec![],
                    sql: text("select * from c where id = ?")
                },
                LuTable {
                    name: name("address"),
                    key: vec![name("customer_id"), name("kind")],
                    sql: text("select * from a where customer_id = ?"),
                },
            ],
        }
    );
}

#[test]
fn create_lu_errors() {
    assert_eq!(expected(&err("CREATE LU C FROM crm")), vec!["ROOT"]);
    assert_eq!(expected(&err("CREATE LU C FROM crm ROOT 'x'")), vec!["'('"]);
    assert_eq!(
        expected(&err("CREATE LU C FROM crm ROOT ('x') TABLE t KEY () ('y')")),
        vec!["a column name"]
    );
    assert_eq!(
        expected(&err("CREATE LU C FROM crm ROOT ('x') TABLES")),
        vec!["TABLE", "';'", "end of input"]
    );
}

#[test]
fn instance_groups() {
    assert_eq!(
        one("CREATE INSTANCE GROUP Customer.vip FROM other USING ('select id from c')"),
        Statement::CreateInstanceGroup {
            or_replace: false,
            lu: name("Customer"),
            group: name("vip"),
            interface: Some(name("other")),
            sql: text("select id from c"),
        }
    );
    assert_eq!(
        one("DROP INSTANCE GROUP Customer.vip"),
        Statement::DropInstanceGroup {
            lu: name("Customer"),
            group: name("vip")
        }
    );
    assert_eq!(
        one("SHOW INSTANCE GROUPS Customer"),
        Statement::ShowInstanceGroups {
            lu: Some(name("Customer"))
        }
    );
    assert_eq!(
        one("SHOW INSTANCE GROUPS"),
        Statement::ShowInstanceGroups { lu: None }
    );
    assert_eq!(
        expected(&err("CREATE INSTANCE GROUP C.g ('x')")),
        vec!["FROM", "USING"]
    );
    assert_eq!(expected(&err("CREATE INSTANCE GROUP C ('x')")), vec!["'.'"]);
}

#[test]
fn show_drop_describe_get() {
    assert_eq!(one("show interfaces"), Statement::ShowInterfaces);
    assert_eq!(one("SHOW LUS;"), Statement::ShowLus);
    assert_eq!(
        one("DROP INTERFACE crm"),
        Statement::DropInterface { name: name("crm") }
    );
    assert_eq!(
        one("DROP LU Customer"),
        Statement::DropLu {
            name: name("Customer")
        }
    );
    assert_eq!(
        one("DESCRIBE LU Customer"),
        Statement::DescribeLu {
            name: name("Customer")
        }
    );
    assert_eq!(
        one("describe interface crm"),
        Statement::DescribeInterface { name: name("crm") }
    );
    assert_eq!(
        one("GET Customer.'4 2'"),
        Statement::Get {
            lu: name("Customer"),
            id: text("4 2")
        }
    );
    assert_eq!(
        one("GET Customer.42"),
        Statement::Get {
            lu: name("Customer"),
            id: text("42")
        }
    );
    assert_eq!(
        expected(&err("DROP TABLE x")),
        vec!["INTERFACE", "LU", "INSTANCE", "SCHEDULE"]
    );
    assert_eq!(expected(&err("DESCRIBE TABLE x")), vec!["LU", "INTERFACE"]);
    assert_eq!(
        expected(&err("DESCRIBE INTERFACE")),
        vec!["an interface name"]
    );
    assert_eq!(expected(&err("GET Customer")), vec!["'.'"]);
    assert_eq!(expected(&err("GET Customer.")), vec!["an entity id"]);
    assert_eq!(expected(&err("SHOW LUS x")), vec!["';'", "end of input"]);
}
