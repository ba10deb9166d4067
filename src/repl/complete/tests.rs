//! The completer against a fake catalog and a temporary folder: what Tab
//! offers at each place of a statement, and that it never panics.

use super::*;

struct Fake;

impl Catalog for Fake {
    fn lus(&self) -> Vec<String> {
        vec!["Customer".into(), "Account".into(), "Cust2".into()]
    }
    fn interfaces(&self) -> Vec<String> {
        vec!["crm".into(), "warehouse".into()]
    }
    fn groups(&self, lu: &str) -> Vec<String> {
        if lu.eq_ignore_ascii_case("Customer") {
            vec!["vip".into(), "churned".into()]
        } else {
            Vec::new()
        }
    }
    fn recent_bids(&self) -> Vec<String> {
        vec![
            "c0ffee42-1d2e-4b7a-9f00-5a1b2c3d4e5f".into(),
            "c0ffee99-0000-4000-8000-000000000000".into(),
            "0a1b2c3d-0000-4000-8000-000000000000".into(),
        ]
    }
}

/// The candidates' displays for `text` with the cursor at its end (or
/// at `|` when it has one), and the replaced part.
fn at(text: &str) -> (Vec<String>, String) {
    let cursor = text.find('|').unwrap_or(text.len());
    let text = text.replace('|', "");
    let c = complete(&text, cursor, &Fake, Path::new("/"));
    (
        c.candidates.into_iter().map(|c| c.display).collect(),
        text[c.start..cursor].to_string(),
    )
}

fn shown(text: &str) -> Vec<String> {
    at(text).0
}

#[test]
fn statement_names_from_the_keyword_list() {
    let mut words = keywords::leading_words();
    words.sort_unstable();
    words.dedup();
    assert_eq!(shown("").len(), words.len());
    assert_eq!(shown("BATCH_L"), vec!["BATCH_LIST"]);
    assert_eq!(shown("batch_l"), vec!["batch_list"]);
    assert_eq!(
        shown("SHOW LUS; BATCH_IN"),
        vec!["BATCH_INFO", "BATCH_IN_PROCESS"]
    );
    assert_eq!(shown("qu"), vec!["quit"]);
    assert_eq!(shown("CREATE "), vec!["OR", "INTERFACE", "LU", "INSTANCE"]);
    assert_eq!(shown("create instance g"), vec!["group"]);
    assert_eq!(shown("SHOW S"), vec!["SCHEDULES", "SETTINGS"]);
    assert_eq!(shown("SET FORMAT "), vec!["table", "json", "csv"]);
    assert_eq!(shown("SET PROGRESS o"), vec!["on", "off"]);
    assert_eq!(shown("SET E"), vec!["EXPANDED"]);
    assert_eq!(shown("SET EXPANDED "), vec!["on", "off", "auto"]);
    assert_eq!(shown("set timing of"), vec!["off"]);
    assert_eq!(shown("SET P"), vec!["PROGRESS", "PAGER"]);
}

#[test]
fn keywords_come_with_a_blank_and_options_with_an_equals_sign() {
    let c = complete("BATCH_LIS", 9, &Fake, Path::new("/"));
    assert_eq!(c.start, 0);
    assert_eq!(c.candidates[0].replacement, "BATCH_LIST ");
    let c = complete("BATCH_LIST LIM", 14, &Fake, Path::new("/"));
    assert_eq!(c.start, 11);
    assert_eq!(c.candidates[0].replacement, "LIMIT=");
}

#[test]
fn with_options_after_with() {
    let b = "BATCH Customer.(1, 2) FABRIC_COMMAND='sleep 10 ?' ";
    assert_eq!(shown(b), vec!["WITH"]);
    assert_eq!(
        shown(&format!("{b}WITH MAX_W")),
        vec!["MAX_WORKERS_PER_NODE"]
    );
    assert_eq!(
        shown(&format!("{b}with max_r")),
        vec!["max_retries"],
        "lower case in, lower case out"
    );
    let all = shown(&format!("{b}WITH ASYNC=true "));
    assert_eq!(all.len(), keywords::BATCH_OPTIONS.len());
    assert!(shown(&format!("{b}WITH MAX_RETRIES=1, CH")).contains(&"CHUNK_SIZE".into()));
    assert_eq!(
        shown("CREATE INTERFACE f TYPE CSV PATH 'a.csv' WITH "),
        vec!["HEADER", "DELIMITER", "TYPES"]
    );
}

#[test]
fn options_of_statements_that_take_them_without_with() {
    assert_eq!(
        shown("BATCH_LIST "),
        vec!["STATUS", "FROM_DATE", "TO_DATE", "FILTER", "LIMIT"]
    );
    assert_eq!(shown("BATCH_RETRY 'c0ffee42' AL"), vec!["ALLOW_CANCELLED"]);
    assert_eq!(shown("STARTJOB STATEMENT NAME='n' C"), vec!["COMMAND"]);
    assert_eq!(shown("BATCH_EDIT MAX"), vec!["MAX_WORKERS_PER_NODE"]);
}

#[test]
fn store_names_where_a_name_goes() {
    assert_eq!(shown("BATCH Cu"), vec!["Cust2", "Customer"]);
    assert_eq!(shown("batch cust"), vec!["Cust2", "Customer"]);
    assert_eq!(shown("GET A"), vec!["Account"]);
    assert_eq!(shown("DESCRIBE LU "), vec!["Account", "Cust2", "Customer"]);
    assert_eq!(shown("DESCRIBE INTERFACE "), vec!["crm", "warehouse"]);
    assert_eq!(shown("DESCRIBE "), vec!["LU", "INTERFACE"]);
    assert_eq!(shown("SHOW INSTANCE GROUPS Acc"), vec!["Account"]);
    assert_eq!(
        shown("BATCH Customer FROM "),
        vec!["FABRIC", "STDIN", "FILE", "crm", "warehouse"]
    );
    assert_eq!(shown("CREATE LU x FROM w"), vec!["warehouse"]);
    assert_eq!(shown("BATCH Customer."), vec!["churned", "vip"]);
    assert_eq!(shown("BATCH Customer.v"), vec!["vip"]);
    assert_eq!(shown("DROP INSTANCE GROUP Customer.c"), vec!["churned"]);
    assert_eq!(
        shown("BATCH Customer FROM crm USING ('select 1') "),
        vec!["FABRIC_COMMAND"]
    );
}

#[test]
fn recent_batch_ids_after_batch_statements() {
    let (c, replaced) = at("BATCH_INFO c0ff");
    assert_eq!(c.len(), 2);
    assert_eq!(replaced, "c0ff");
    // A bid with its dashes is one bare value.
    let (c, replaced) = at("BATCH_SUMMARY c0ffee42-1d");
    assert_eq!(c, vec!["c0ffee42-1d2e-4b7a-9f00-5a1b2c3d4e5f"]);
    assert_eq!(replaced, "c0ffee42-1d");
    assert_eq!(shown("BATCH_DETAILS 0a").len(), 1);
    assert_eq!(shown("CANCEL BATCH 0a").len(), 1);
    assert_eq!(shown("BATCH_APPEND 0").len(), 1);
    // BATCH_DETAILS takes a bid or options.
    let both = shown("BATCH_DETAILS ");
    assert_eq!(both.len(), 3 + keywords::DETAILS_OPTIONS.len());
    // Inside quotes, with the closing quote.
    let c = complete("BATCH_PAUSE 'c0ffee4", 20, &Fake, Path::new("/"));
    assert_eq!(c.start, 13);
    assert_eq!(
        c.candidates[0].replacement,
        "c0ffee42-1d2e-4b7a-9f00-5a1b2c3d4e5f'"
    );
}

#[test]
fn help_topics_are_statement_names() {
    assert_eq!(shown("HELP BATCH_S"), vec!["BATCH_SUMMARY"]);
    assert_eq!(shown("help create "), vec!["INTERFACE", "LU", "INSTANCE"]);
    assert_eq!(shown("HELP CREATE INSTANCE "), vec!["GROUP"]);
    assert_eq!(shown("HELP Q"), vec!["QUIT"]);
}

#[test]
fn nothing_inside_sql_comments_or_after_a_broken_prefix() {
    assert!(shown("BATCH Customer FROM crm USING ('select c").is_empty());
    assert!(shown("SHOW LUS -- BATCH_L").is_empty());
    assert!(shown("SHOW LUS /* BATCH_L").is_empty());
    assert!(shown("BATCH_LSIT; x").is_empty());
    assert!(shown("NO_SUCH_STATEMENT ").is_empty());
    assert!(shown("BATCH Customer FABRIC_COMAND='x' ").is_empty());
}

#[test]
fn the_cursor_in_the_middle_completes_the_word_before_it() {
    let (c, replaced) = at("BATCH_L| LIMIT=3");
    assert_eq!(c, vec!["BATCH_LIST"]);
    assert_eq!(replaced, "BATCH_L");
}

#[test]
fn file_paths_inside_path_strings() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("data/crm.db"), "").unwrap();
    std::fs::write(dir.path().join("data/crm.csv"), "").unwrap();
    std::fs::write(dir.path().join("data/it's.csv"), "").unwrap();
    std::fs::write(dir.path().join("data/.hidden"), "").unwrap();
    let cwd = dir.path();
    let run = |text: &str| complete(text, text.len(), &Fake, cwd);

    let c = run("CREATE INTERFACE crm TYPE SQLITE PATH 'da");
    assert_eq!(c.start, 39);
    assert_eq!(c.candidates[0].display, "data/");
    assert_eq!(c.candidates[0].replacement, "data/");

    let c = run("CREATE INTERFACE crm TYPE SQLITE path 'data/cr");
    assert_eq!(c.start, 44);
    let shown: Vec<&str> = c.candidates.iter().map(|c| c.display.as_str()).collect();
    assert_eq!(shown, vec!["crm.csv", "crm.db"]);

    // A quote in a name is doubled inside the string.
    let c = run("CREATE INTERFACE f TYPE CSV PATH 'data/it");
    assert_eq!(c.candidates[0].replacement, "it''s.csv");
    let c = run("CREATE INTERFACE f TYPE CSV PATH \"data/");
    assert_eq!(c.candidates.len(), 3, "hidden files stay hidden");

    let abs = format!(
        "CREATE INTERFACE f TYPE CSV PATH '{}/data/crm.d",
        dir.path().display()
    );
    assert_eq!(run(&abs).candidates[0].display, "crm.db");
    // Not a PATH: a SQL string.
    assert!(run("CREATE LU x FROM crm ROOT ('da").candidates.is_empty());
}

#[test]
fn odd_input_never_panics() {
    for text in [
        "é",
        "'",
        "$$",
        ";;;",
        "BATCH é",
        "((((",
        "\u{0}",
        "BATCH_INFO 'é",
    ] {
        for cursor in 0..=text.len() + 1 {
            let _ = complete(text, cursor, &Fake, Path::new("/nonexistent"));
        }
    }
}
