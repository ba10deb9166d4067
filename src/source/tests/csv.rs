use super::{expect_err, iface, ok_ids};
use crate::catalog::InterfaceKind;
use crate::source::{Interface, Param, SourceError, check, check_id_query, connect, for_each_id};
use std::ops::ControlFlow;
use std::path::Path;

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn csv(path: &Path) -> Interface {
    iface(InterfaceKind::Csv, path)
}

#[test]
fn file_becomes_a_table_named_by_its_stem_its_columns_typed() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "ids.csv", "id,name\n1,ann\n2,bob\n10,cy\n");
    check(&csv(&p)).unwrap();
    let conn = connect(&csv(&p)).unwrap();
    assert_eq!(
        ok_ids(&conn, "select id from ids limit 100"),
        ["1", "2", "10"]
    );
    assert_eq!(
        ok_ids(
            &conn,
            "select typeof(id) || ' ' || typeof(name) from ids limit 1"
        ),
        ["integer text"]
    );
    // INTEGER: compared and ordered as numbers.
    assert_eq!(
        ok_ids(&conn, "select id from ids where id < 5 order by id"),
        ["1", "2"]
    );
    // TYPES=false: every field TEXT, ordered as strings.
    let mut text = csv(&p);
    text.types = false;
    let conn = connect(&text).unwrap();
    assert_eq!(
        ok_ids(&conn, "select id from ids order by id"),
        ["1", "10", "2"]
    );
}

#[test]
fn a_column_is_integer_real_or_text_by_all_its_values() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "t.csv",
        "i,r,mixed,blank,sci,word\n1,1.5,1,,1e3,inf\n-2,,x,,2.5E-1,NaN\n,3,3,,7,12\n",
    );
    let conn = connect(&csv(&p)).unwrap();
    let types = "select typeof(i) || typeof(r) || typeof(mixed) || typeof(blank) \
                 || typeof(sci) || typeof(word) from t";
    assert_eq!(
        ok_ids(&conn, types),
        [
            "integerrealtexttextrealtext",
            "integernulltexttextrealtext",
            // An empty field of a typed column is NULL.
            "nullrealtexttextrealtext"
        ]
    );
    assert_eq!(ok_ids(&conn, "select sum(i) from t"), ["-1"]);
}

/// Ids keep their text: an integer that would not read back as written
/// (leading zeros, a sign, past 64 bits) makes its column TEXT.
#[test]
fn integers_that_would_not_read_back_as_written_keep_their_column_text() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "z.csv",
        "zip,big,plus,n\n007,99999999999999999999,+5,-12\n010,1,6,0\n",
    );
    let conn = connect(&csv(&p)).unwrap();
    assert_eq!(
        ok_ids(
            &conn,
            "select typeof(zip) || typeof(big) || typeof(plus) || typeof(n) from z"
        ),
        ["texttexttextinteger", "texttexttextinteger"]
    );
    assert_eq!(ok_ids(&conn, "select zip from z"), ["007", "010"]);
    assert_eq!(
        ok_ids(&conn, "select big from z"),
        ["99999999999999999999", "1"]
    );
}

#[test]
fn folder_gives_one_table_per_file_and_they_join() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "customers.csv",
        "id,tier\n1,gold\n2,tin\n3,gold\n",
    );
    write(
        dir.path(),
        "orders.CSV",
        "order_id,customer_id\n10,1\n11,3\n12,3\n13,2\n",
    );
    write(dir.path(), "readme.txt", "not a table");
    std::fs::create_dir(dir.path().join("old.csv")).unwrap();
    check(&csv(dir.path())).unwrap();
    let conn = connect(&csv(dir.path())).unwrap();
    assert_eq!(
        ok_ids(
            &conn,
            "select o.order_id from orders o join customers c on c.id = o.customer_id \
             where c.tier = 'gold' order by o.order_id"
        ),
        ["10", "11", "12"]
    );
}

#[test]
fn without_header_columns_are_numbered() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "ids.csv", "7,x\n8,y\n");
    let mut i = csv(&p);
    i.header = false;
    check(&i).unwrap();
    let conn = connect(&i).unwrap();
    assert_eq!(ok_ids(&conn, "select c1 || c2 from ids"), ["7x", "8y"]);
}

#[test]
fn other_delimiter() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "ids.csv", "id;note\n1;a,b\n2;c\n");
    let mut i = csv(&p);
    i.delimiter = b';';
    let conn = connect(&i).unwrap();
    assert_eq!(ok_ids(&conn, "select note from ids"), ["a,b", "c"]);
}

#[test]
fn quoted_fields_keep_commas_quotes_and_newlines() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "ids.csv",
        "\u{feff}id, note\n1,\"a, b\"\n2,\"line 1\nline 2\"\n3,\"say \"\"hi\"\"\"\n",
    );
    let conn = connect(&csv(&p)).unwrap();
    // The BOM and the space before `note` are not part of the names.
    assert_eq!(
        ok_ids(&conn, "select note from ids order by id"),
        ["a, b", "line 1\nline 2", "say \"hi\""]
    );
}

#[test]
fn bad_row_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    // The bad row starts on line 4: the quoted field before it spans two.
    let p = write(dir.path(), "ids.csv", "id,note\n1,\"a\nb\"\n2,x,y\n3,z\n");
    let want = format!(
        "interface src: {} line 4: 3 fields, the header has 2",
        p.display()
    );
    assert_eq!(expect_err(check(&csv(&p))).to_string(), want);
    assert_eq!(expect_err(connect(&csv(&p))).to_string(), want);

    // Without a header the first row sets the width.
    let mut i = csv(&p);
    i.header = false;
    let e = expect_err(check(&i));
    assert!(
        matches!(
            e,
            SourceError::CsvFields {
                line: 4,
                found: 3,
                expected: 2,
                header: false,
                ..
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string()
            .ends_with("line 4: 3 fields, the first row has 2"),
        "{e}"
    );
    let p = write(
        dir.path(),
        "one.csv",
        "1,2
3
",
    );
    let mut i = csv(&p);
    i.header = false;
    let e = expect_err(check(&i));
    assert!(
        e.to_string()
            .ends_with("line 2: 1 field, the first row has 2"),
        "{e}"
    );
}

#[test]
fn bad_row_in_one_file_of_a_folder_names_that_file() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.csv", "id\n1\n");
    let b = write(dir.path(), "b.csv", "id,x\n1,2\n3\n");
    let e = expect_err(connect(&csv(dir.path())));
    assert!(
        e.to_string().contains(&format!("{} line 3:", b.display())),
        "{e}"
    );
}

#[test]
fn empty_folder_and_folder_without_csv() {
    let dir = tempfile::tempdir().unwrap();
    let want = format!(
        "interface src: the folder {} holds no .csv file",
        dir.path().display()
    );
    assert_eq!(expect_err(check(&csv(dir.path()))).to_string(), want);
    write(dir.path(), "ids.txt", "id\n1\n");
    assert_eq!(expect_err(connect(&csv(dir.path()))).to_string(), want);
}

#[test]
fn a_file_of_any_extension_is_a_table_named_by_its_stem() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "ids.txt", "id\n1\n2\n");
    check(&csv(&p)).unwrap();
    let conn = connect(&csv(&p)).unwrap();
    let n: i64 = conn
        .query_row("select count(*) from ids", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 2);
    let e = expect_err(check(&csv(&dir.path().join("gone.csv"))));
    assert!(matches!(e, SourceError::NotFound { .. }), "{e}");
}

#[test]
fn empty_file_needs_a_header_only_when_header_is_on() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "ids.csv", "");
    let e = expect_err(check(&csv(&p)));
    assert!(matches!(e, SourceError::EmptyCsv { .. }), "{e}");
    let mut i = csv(&p);
    i.header = false;
    let conn = connect(&i).unwrap();
    assert!(ok_ids(&conn, "select c1 from ids").is_empty());
}

#[test]
fn header_only_is_an_empty_table() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "ids.csv", "id\n");
    let conn = connect(&csv(&p)).unwrap();
    assert!(ok_ids(&conn, "select id from ids").is_empty());
}

#[test]
fn header_names_empty_and_repeated() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "ids.csv", ",id\n0,7\n");
    let conn = connect(&csv(&p)).unwrap();
    assert_eq!(ok_ids(&conn, "select c1 || id from ids"), ["07"]);

    let p = write(dir.path(), "dup.csv", "id,ID\n1,2\n");
    let e = expect_err(check(&csv(&p)));
    assert_eq!(
        e.to_string(),
        format!(
            "interface src: {} line 1: the header names column ID twice \
             (column names ignore case); rename one of them",
            p.display()
        )
    );
}

#[test]
fn two_files_that_differ_only_in_case_clash() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "ids.csv", "id\n1\n");
    write(dir.path(), "IDS.csv", "id\n2\n");
    let e = expect_err(check(&csv(dir.path())));
    assert!(matches!(e, SourceError::TableClash { .. }), "{e}");
}

#[test]
fn loaded_tables_are_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "ids.csv", "id\n1\n");
    let conn = connect(&csv(&p)).unwrap();
    let e = conn
        .execute("insert into ids values ('2')", [])
        .unwrap_err();
    assert!(e.to_string().contains("readonly"), "{e}");
}

#[test]
fn unknown_table_lists_the_files_tables() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "ids.csv", "id\n1\n");
    write(dir.path(), "more ids.csv", "id\n2\n");
    let conn = connect(&csv(dir.path())).unwrap();
    assert_eq!(ok_ids(&conn, "select id from \"more ids\""), ["2"]);
    let e = for_each_id(&conn, "select id from idz", &[], &[], |_| {
        ControlFlow::Continue(())
    })
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("no such table: idz; the tables are ids, more ids"),
        "{e}"
    );
}

#[test]
fn delimiter_must_not_be_a_quote() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "ids.csv", "id\n1\n");
    let mut i = csv(&p);
    i.delimiter = b'"';
    let e = expect_err(check(&i));
    assert!(matches!(e, SourceError::Delimiter { .. }), "{e}");
}

#[test]
fn invalid_utf8_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("ids.csv");
    std::fs::write(&p, b"id,n\n1,a\n2,\xff\n").unwrap();
    let e = expect_err(check(&csv(&p)));
    assert!(
        e.to_string()
            .ends_with("line 3: field 2 is not valid UTF-8; save the file as UTF-8"),
        "{e}"
    );
}

#[test]
fn an_unclosed_quote_is_refused_with_the_line_it_opened_on() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "ids.csv",
        "id,note\n1,\"unterminated\n2,b\n3,c\n",
    );
    let want = format!(
        "interface src: {} line 2: a quoted field opens here and is never closed, so the \
         rest of the file would be one field; close the quote (a quote inside a quoted \
         field is written twice, \"\")",
        p.display()
    );
    assert_eq!(expect_err(check(&csv(&p))).to_string(), want);
    assert_eq!(expect_err(connect(&csv(&p))).to_string(), want);

    // Without a header, on the first line, with no line break at the end.
    let p = write(dir.path(), "raw.csv", "1,\"unterminated\n2,b\n3,c");
    let mut i = csv(&p);
    i.header = false;
    let e = expect_err(connect(&i));
    assert!(
        e.to_string()
            .contains("raw.csv line 1: a quoted field opens here and is never closed"),
        "{e}"
    );
    // A doubled quote at the end is an escaped quote, not a closing one;
    // a BOM before the only line does not hide the opening quote.
    for (name, text, line) in [
        ("doubled.csv", "id\n1\n\"a\"\"\n", 3),
        ("bom.csv", "\u{feff}\"id\n1\n", 1),
    ] {
        let p = write(dir.path(), name, text);
        let e = expect_err(check(&csv(&p)));
        assert!(
            e.to_string()
                .contains(&format!("{name} line {line}: a quoted field opens here")),
            "{name}: {e}"
        );
    }
}

#[test]
fn quotes_that_close_pass_the_unclosed_quote_check() {
    let dir = tempfile::tempdir().unwrap();
    for (text, want) in [
        // Closed lines later, at the very end of the file.
        ("id,note\n1,\"a\nb\"", vec!["a\nb"]),
        // Closed, then more text: csv-core keeps it as plain text.
        ("id,note\n1,\"a\"b\n", vec!["ab"]),
        // A quote inside a field that did not start with one is text.
        ("id,note\n1,ab\"c\n", vec!["ab\"c"]),
        // Escaped quotes and a CRLF line end after the closing quote.
        ("id,note\r\n1,\"say \"\"hi\"\"\"\r\n", vec!["say \"hi\""]),
        // The last field is empty, after a quoted one.
        ("id,note,x\n1,\"a\nb\",\n", vec!["a\nb"]),
    ] {
        let p = write(dir.path(), "ids.csv", text);
        check(&csv(&p)).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        let conn = connect(&csv(&p)).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        assert_eq!(ok_ids(&conn, "select note from ids"), want, "{text:?}");
    }
}

#[test]
fn a_fifo_is_refused_without_opening_it() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("ids.csv");
    super::mkfifo(&fifo);
    // Opening it would wait for a writer: these must return at once.
    let file = csv(&fifo);
    let (checked, connected) = super::in_time(move || (check(&file), connect(&file).map(drop)));
    assert_eq!(
        expect_err(checked).to_string(),
        format!(
            "interface src: {} is a FIFO (named pipe), not a file; give a .csv file or a \
             folder that holds .csv files",
            fifo.display()
        )
    );
    let e = expect_err(connected);
    assert!(e.to_string().contains("is a FIFO (named pipe)"), "{e}");

    // In a folder, next to a real table: named as one, it is refused, not
    // skipped.
    write(dir.path(), "a.csv", "id\n1\n");
    let folder = csv(dir.path());
    let e = expect_err(super::in_time(move || connect(&folder).map(drop)));
    assert!(
        e.to_string().starts_with(&format!(
            "interface src: {} is a FIFO (named pipe), not a file; every .csv file",
            fifo.display()
        )),
        "{e}"
    );
}

#[test]
fn schema_has_the_tables_but_not_their_rows_and_checks_queries() {
    let dir = tempfile::tempdir().unwrap();
    // A bad row further down is the load's to find, not the schema's.
    let p = write(dir.path(), "ids.csv", "id,name\n1,a\n2,b,extra\n");
    let conn = crate::source::schema(&csv(&p)).unwrap();
    assert_eq!(ok_ids(&conn, "select count(*) from ids"), ["0"]);
    check_id_query(
        &conn,
        "select id from ids where name = ?",
        &[Param::Int(1)],
        &[],
    )
    .unwrap();
    for (sql, params, why) in [
        ("delete from ids returning id", vec![], "would change data"),
        (
            "select id from ids; select 1",
            vec![],
            "more than one statement",
        ),
        (
            "select id from ids where id > ?",
            vec![],
            "1 ? placeholder and 0 values",
        ),
        (
            "select id from ids",
            vec![Param::Int(1)],
            "no ? placeholder and 1 value",
        ),
    ] {
        let e = expect_err(check_id_query(&conn, sql, &params, &[]));
        assert!(e.is_query_text_fault(), "{sql}: {e}");
        assert!(e.to_string().contains(why), "{sql}: {e}");
    }
    // What the database says is not the text's fault.
    let e = expect_err(check_id_query(&conn, "select id from nowhere", &[], &[]));
    assert!(!e.is_query_text_fault(), "{e}");
}
