//! The contract of the catalog: interfaces, LUs and instance groups, their
//! names without regard to case, what depends on what, and the errors
//! word for word, on any store.

use super::ContractStore;
use super::batches::{new_batch, test_run};
use super::count;
use crate::catalog::InterfaceKind;
use crate::store::{GroupDef, InterfaceDef, LuDef, LuTableDef, StoreError, now, stamp};

/// Runs the catalog tests on stores that `fresh` makes, each new and
/// empty.
pub fn all(fresh: &dyn Fn() -> Box<dyn ContractStore>) {
    interfaces_are_stored_and_found_without_regard_to_case(&*fresh());
    lus_keep_their_tables_in_order_with_keys(&*fresh());
    dropping_respects_what_depends_on_what(&*fresh());
    a_group_needs_its_lu_and_is_dropped_by_name(&*fresh());
    names_are_listed_in_sqlites_order(&*fresh());
    an_lu_that_a_live_batch_uses_is_not_dropped(&*fresh());
    a_batch_whose_lu_was_dropped_before_its_run_took_it_ends_failed(&*fresh());
}

pub fn iface(name: &str) -> InterfaceDef {
    InterfaceDef {
        name: name.into(),
        kind: InterfaceKind::Csv,
        location: "/data/ids.csv".into(),
        header: false,
        delimiter: ';',
        types: false,
        created_at: now(),
    }
}

pub fn lu(name: &str, interface: &str) -> LuDef {
    LuDef {
        name: name.into(),
        interface: interface.into(),
        root_sql: "select id from customer".into(),
        tables: vec![
            LuTableDef {
                name: "customer".into(),
                key: vec![],
                sql: "select * from customer where id = ?".into(),
            },
            LuTableDef {
                name: "address".into(),
                key: vec!["customer_id".into(), "kind".into()],
                sql: "select * from address where customer_id = ?".into(),
            },
        ],
        created_at: now(),
    }
}

pub fn group(lu: &str, name: &str) -> GroupDef {
    GroupDef {
        lu: lu.into(),
        name: name.into(),
        interface: None,
        sql: "select id from customer where tier = 'gold'".into(),
        created_at: now(),
    }
}

fn interfaces_are_stored_and_found_without_regard_to_case(s: &dyn ContractStore) {
    s.create_interface(&iface("Crm"), false).unwrap();
    let got = s.interface("CRM").unwrap();
    assert_eq!(
        got,
        InterfaceDef {
            created_at: got.created_at.clone(),
            ..iface("Crm")
        }
    );
    let e = s.create_interface(&iface("crm"), false).unwrap_err();
    assert_eq!(
        e.to_string(),
        "interface crm exists already; use CREATE OR REPLACE INTERFACE to replace it"
    );
    let mut other = iface("crm");
    other.location = "/elsewhere.csv".into();
    s.create_interface(&other, true).unwrap();
    assert_eq!(s.interfaces().unwrap().len(), 1);
    let got = s.interface("crm").unwrap();
    assert_eq!(
        (got.name.as_str(), got.location.as_str()),
        ("crm", "/elsewhere.csv")
    );
    let e = s.interface("crn").unwrap_err();
    assert_eq!(e.to_string(), "no interface named crn (did you mean crm?)");
}

fn lus_keep_their_tables_in_order_with_keys(s: &dyn ContractStore) {
    s.create_interface(&iface("crm"), false).unwrap();
    s.create_lu(&lu("Customer", "crm"), false).unwrap();
    let got = s.lu("customer").unwrap();
    assert_eq!(got.tables, lu("Customer", "crm").tables);
    assert_eq!(got.name, "Customer");
    let e = s.lu("Custmer").unwrap_err();
    assert_eq!(
        e.to_string(),
        "no LU named Custmer (did you mean Customer?)"
    );
    let e = s.create_lu(&lu("CUSTOMER", "crm"), false).unwrap_err();
    assert!(matches!(e, StoreError::Exists { .. }), "{e}");
    assert_eq!(
        e.to_string(),
        "LU CUSTOMER exists already; use CREATE OR REPLACE LU to replace it"
    );
    // Replacing keeps the name as first written.
    let mut other = lu("CUSTOMER", "crm2");
    other.tables.pop();
    s.create_lu(&other, true).unwrap();
    let got = s.lu("Customer").unwrap();
    assert_eq!(
        (got.name.as_str(), got.interface.as_str(), got.tables.len()),
        ("Customer", "crm2", 1)
    );
}

fn dropping_respects_what_depends_on_what(s: &dyn ContractStore) {
    s.create_interface(&iface("crm"), false).unwrap();
    s.create_lu(&lu("Customer", "crm"), false).unwrap();
    s.create_group(&group("customer", "vip"), false).unwrap();
    assert_eq!(s.group("Customer", "VIP").unwrap().lu, "Customer");
    assert_eq!(
        s.create_group(&group("CUSTOMER", "VIP"), false)
            .unwrap_err()
            .to_string(),
        "instance group Customer.VIP exists already; use CREATE OR REPLACE INSTANCE GROUP to replace it"
    );
    assert_eq!(
        s.drop_interface("crm").unwrap_err().to_string(),
        "interface crm is used by LU Customer; drop that first"
    );
    // Replacing the LU keeps its groups.
    s.create_lu(&lu("Customer", "crm"), true).unwrap();
    assert_eq!(s.groups(Some("Customer")).unwrap().len(), 1);
    assert_eq!(s.groups(None).unwrap().len(), 1);
    let e = s.group("Customer", "vpi").unwrap_err();
    assert_eq!(
        e.to_string(),
        "no instance group named Customer.vpi (did you mean Customer.vip?)"
    );
    assert_eq!(
        s.drop_group("customer", "vpi").unwrap_err().to_string(),
        e.to_string()
    );
    // Dropping the LU drops its tables and groups; then the interface is free.
    assert!(s.drop_lu_unless_in_use("CUSTOMER").unwrap().is_none());
    assert!(s.groups(None).unwrap().is_empty());
    assert_eq!(count(s, "SELECT count(*) FROM lu_tables"), 0);
    s.drop_interface("CRM").unwrap();
    assert!(s.interfaces().unwrap().is_empty());
    assert!(matches!(
        s.drop_lu_unless_in_use("Customer"),
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(
        s.drop_interface("crm").unwrap_err().to_string(),
        "no interface named crm"
    );
}

fn a_group_needs_its_lu_and_is_dropped_by_name(s: &dyn ContractStore) {
    assert_eq!(
        s.create_group(&group("Nope", "vip"), false)
            .unwrap_err()
            .to_string(),
        "no LU named Nope"
    );
    s.create_lu(&lu("Customer", "crm"), false).unwrap();
    s.create_interface(&iface("billing"), false).unwrap();
    s.create_group(&group("Customer", "vip"), false).unwrap();
    s.create_group(
        &GroupDef {
            interface: Some("billing".into()),
            ..group("Customer", "VIP")
        },
        true,
    )
    .unwrap();
    assert_eq!(
        s.drop_interface("Billing").unwrap_err().to_string(),
        "interface billing is used by instance group Customer.VIP; drop that first"
    );
    let groups = s.groups(Some("CUSTOMER")).unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].name, "VIP", "replacing takes the name as written");
    s.drop_group("customer", "vip").unwrap();
    assert!(s.groups(None).unwrap().is_empty());
}

/// Listings, and did-you-mean among equally close names, follow SQLite's
/// NOCASE order (ASCII letters folded, then bytes).
fn names_are_listed_in_sqlites_order(s: &dyn ContractStore) {
    for n in ["b", "A_x", "a1", "a0"] {
        s.create_interface(&iface(n), false).unwrap();
    }
    let names: Vec<String> = s
        .interfaces()
        .unwrap()
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert_eq!(names, ["a0", "a1", "A_x", "b"]);
    assert_eq!(
        s.interface("a2").unwrap_err().to_string(),
        "no interface named a2 (did you mean a0?)"
    );
}

fn an_lu_that_a_live_batch_uses_is_not_dropped(s: &dyn ContractStore) {
    s.create_interface(&iface("crm"), false).unwrap();
    s.create_lu(&lu("Customer", "crm"), false).unwrap();
    new_batch(s, "b1", "L", "echo ?");
    // Run by a process on another node whose heartbeat is fresh: alive.
    let set = |lu: &str, command: &str, beat: chrono::TimeDelta| {
        let at = stamp(chrono::Utc::now() - beat);
        s.execute(&format!(
            "UPDATE batches SET status = 'IN_PROGRESS', lu = '{lu}', fabric_command = '{command}',
                 owner_node = 'elsewhere', owner_pid = 7, heartbeat_at = '{at}'"
        ));
    };
    let fresh = chrono::TimeDelta::seconds(1);
    for (target, command) in [
        ("Other", "sync_instance Customer.?"),
        ("Other", "delete_instance CUSTOMER.?"),
        ("customer", "echo ?"),
    ] {
        set(target, command, fresh);
        let user = s.drop_lu_unless_in_use("Customer").unwrap();
        let user = user.unwrap_or_else(|| panic!("{target} / {command}: dropped"));
        assert_eq!((user.bid.as_str(), user.owner_pid), ("b1", Some(7)));
        assert!(s.find_lu("Customer").unwrap().is_some());
    }
    // Another LU's batch, or a dead process's: the LU goes.
    set("Other", "sync_instance Customers.?", fresh);
    assert!(s.drop_lu_unless_in_use("Customer").unwrap().is_none());
    s.create_lu(&lu("Customer", "crm"), false).unwrap();
    set(
        "Customer",
        "sync_instance Customer.?",
        chrono::TimeDelta::minutes(1),
    );
    assert!(s.drop_lu_unless_in_use("Customer").unwrap().is_none());
    assert!(s.find_lu("Customer").unwrap().is_none());
}

fn a_batch_whose_lu_was_dropped_before_its_run_took_it_ends_failed(s: &dyn ContractStore) {
    use crate::batch::BatchStatus;
    s.create_interface(&iface("crm"), false).unwrap();
    s.create_lu(&lu("Customer", "crm"), false).unwrap();
    s.create_lu(&lu("Copy", "crm"), false).unwrap();
    // Planned and created, not yet owned: DROP LU sees no user.
    new_batch(s, "b1", "Customer", "sync_instance copy.?");
    assert!(s.drop_lu_unless_in_use("Copy").unwrap().is_none());
    let e = s.take_ownership(test_run("b1"), "dc").unwrap_err();
    assert!(
        matches!(e, StoreError::LuDropped { ref lu, .. } if lu == "copy"),
        "{e}"
    );
    let state = s.batch_state("b1").unwrap();
    assert_eq!(
        (state.status, state.owner_node),
        (BatchStatus::Failed, None)
    );
    // Its LUs there: the run takes it (names ignore case).
    new_batch(s, "b2", "Customer", "sync_instance CUSTOMER.?");
    s.take_ownership(test_run("b2"), "dc").unwrap();
    assert_eq!(
        s.batch_state("b2").unwrap().owner_worker.as_deref(),
        Some("w1")
    );
}
