//! Tables at 80 columns (SPEC §10): the layout rules by column that keep
//! what a value is for, notes whole and paths cut from their left.

use crate::common::Test;
use crate::world::World;

/// `batchsh --home <world's home> -c script`, table format, at 80 columns.
fn at_80(w: &World, script: &str) -> Test {
    Test::new()
        .current_dir(w.path())
        .env("COLUMNS", "80")
        .args(["--home", w.home().to_str().unwrap(), "-c", script])
}

/// An async BATCH's notes end with the worker's log: at 80 columns they
/// stay whole (the row goes to a record, wrapped to the width), where they
/// were cut with `…` before the log's path.
#[test]
fn async_batch_notes_stay_whole_at_80_columns() {
    let w = World::new(3);
    let out = at_80(&w, "BATCH Customer FABRIC_COMMAND='echo ?' WITH ASYNC=true")
        .status(0)
        .run();
    assert!(!out.stdout.contains('…'), "{}", out.stdout);
    for line in out.stdout.lines() {
        assert!(line.chars().count() <= 80, "{line:?}");
    }
    // The note's lines, from `Notes | ...` to the end, joined where the
    // record wrapped them.
    let notes: Vec<&str> = out
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("Notes "))
        .map(|l| l.split_once('|').map_or(l, |(_, v)| v).trim())
        .collect();
    let notes = notes.join(" ");
    let log = w.home().join("logs");
    assert!(
        notes.starts_with("queued; no worker was running, so a background worker (pid ")
            && notes.ends_with(&format!("its log is in {}", log.display())),
        "{notes:?}\n{}",
        out.stdout
    );
    let bid = w.last_bid();
    w.test(&format!("BATCH_WAIT '{bid}'")).status(0).run();
    crate::workers::all_workers_stopped(&w);
}

/// A path is cut from its left at 80 columns (`…/ids.csv`, the file's
/// name whole), in a table and in a record; it was cut from its right,
/// which kept the folder and lost the file.
#[test]
fn show_interfaces_cuts_a_location_from_its_left() {
    let w = World::new(1);
    // `ids` alone: with an SQLITE row too, 80 columns would not hold the
    // table and it would print as records.
    w.test("DROP LU Customer; DROP INTERFACE crm")
        .status(0)
        .run();
    let folder = w
        .path()
        .join("exports/customers/by-region/north-west/2026/december/data");
    std::fs::create_dir_all(&folder).unwrap();
    let file = folder.join("ids.csv");
    std::fs::write(&file, "id\n1\n").unwrap();
    w.test(&format!(
        "CREATE INTERFACE ids TYPE CSV PATH '{}' WITH HEADER=true",
        file.display()
    ))
    .status(0)
    .run();
    let location = |out: &str, name: &str| -> String {
        out.lines()
            .find(|l| l.starts_with(&format!("| {name} ")))
            .unwrap_or_else(|| panic!("no {name}:\n{out}"))
            .split('|')
            .nth(3)
            .unwrap()
            .trim()
            .to_string()
    };
    let out = at_80(&w, "SHOW INTERFACES").status(0).run();
    for line in out.stdout.lines() {
        assert!(line.chars().count() <= 80, "{line:?}\n{}", out.stdout);
    }
    let ids = location(&out.stdout, "ids");
    assert!(
        ids.starts_with("…/") && ids.ends_with("/ids.csv"),
        "{ids:?}\n{}",
        out.stdout
    );
    assert!(file.display().to_string().ends_with(&ids[3..]), "{ids:?}");
    // As a record, in a value column of 80 - 16 = 64: cut from its left
    // (the file's path is longer than that), at a `/`.
    let out = at_80(&w, "SET EXPANDED on; SHOW INTERFACES")
        .status(0)
        .run();
    let record = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("Location "))
        .map(|l| l.split_once('|').unwrap().1.trim())
        .find(|l| l.ends_with("ids.csv"))
        .unwrap_or_else(|| panic!("{}", out.stdout));
    assert!(file.display().to_string().chars().count() > 64);
    assert!(
        record.starts_with("…/") && record.ends_with("/2026/december/data/ids.csv"),
        "{record:?}"
    );
    assert!(record.chars().count() <= 64, "{record:?}");
    // JSON keeps it whole.
    let json = w.test("SHOW INTERFACES").status(0).run();
    assert!(
        json.stdout.contains(&format!("\"{}\"", file.display())),
        "{}",
        json.stdout
    );
}
