//! What `GET Customer.'42'` prints: the instance's stored tables (from
//! [`crate::lu::get_instance`]) as one table in long format, columns
//! `Table`, `Row`, `Column`, `Value`, one line per stored value (`Row`
//! counts from 1 within its table). The LU's tables have different
//! columns, and one [`Output`] must hold them all, in a shape JSON and CSV
//! can carry as well as a terminal; long format is that shape, and it stays
//! readable however wide a table is. An instance that is in the store with
//! no rows gives the header alone (`[]` in JSON).

use crate::lu::{Atom, InstanceTable};
use crate::output::{Cell, Output, Table};
use std::fmt::Write;

/// The instance's tables as `GET`'s one long table.
pub(super) fn long_table(tables: Vec<InstanceTable>) -> Output {
    let mut out = Table::new(["Table", "Row", "Column", "Value"]);
    for table in tables {
        for (r, row) in table.rows.into_iter().enumerate() {
            for (column, value) in table.columns.iter().zip(row) {
                out.push_row(vec![
                    Cell::Text(table.name.clone()),
                    Cell::from(r + 1),
                    Cell::Text(column.clone()),
                    cell(value),
                ]);
            }
        }
    }
    Output::Table(out)
}

/// How `GET` shows a stored value. A blob has no cell of its own: it
/// prints as the SQL literal that would write it back, `x'00ff'`.
fn cell(value: Atom) -> Cell {
    match value {
        Atom::Null => Cell::Null,
        Atom::Int(i) => Cell::Int(i),
        Atom::Real(bits) => Cell::Float(f64::from_bits(bits)),
        Atom::Text(s) => Cell::Text(s),
        Atom::Blob(b) => {
            let mut s = String::with_capacity(b.len() * 2 + 3);
            s.push_str("x'");
            for byte in b {
                let _ = write!(s, "{byte:02x}");
            }
            s.push('\'');
            Cell::Text(s)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str, columns: &[&str], rows: Vec<Vec<Atom>>) -> InstanceTable {
        InstanceTable {
            name: name.into(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows,
        }
    }

    #[test]
    fn an_instance_is_one_long_table() {
        let tables = vec![
            table(
                "customer",
                &["id", "photo"],
                vec![vec![Atom::Int(1), Atom::Blob(vec![0, 255])]],
            ),
            // Not written by any instance yet: no columns, no rows.
            table("address", &[], Vec::new()),
            table(
                "orders",
                &["id", "amount"],
                vec![
                    vec![Atom::Int(1), Atom::real(10.0)],
                    vec![Atom::Int(2), Atom::Null],
                ],
            ),
        ];
        let Output::Table(t) = long_table(tables) else {
            panic!("a table");
        };
        assert_eq!(t.columns, ["Table", "Row", "Column", "Value"]);
        let text = |s: &str| Cell::Text(s.into());
        assert_eq!(
            t.rows,
            [
                vec![text("customer"), Cell::Int(1), text("id"), Cell::Int(1)],
                vec![
                    text("customer"),
                    Cell::Int(1),
                    text("photo"),
                    text("x'00ff'")
                ],
                vec![text("orders"), Cell::Int(1), text("id"), Cell::Int(1)],
                vec![
                    text("orders"),
                    Cell::Int(1),
                    text("amount"),
                    Cell::Float(10.0)
                ],
                vec![text("orders"), Cell::Int(2), text("id"), Cell::Int(2)],
                vec![text("orders"), Cell::Int(2), text("amount"), Cell::Null],
            ]
        );
        let style = crate::output::Style {
            format: crate::ast::OutputFormat::Json,
            color: false,
            width: None,
            expanded: crate::ast::Expanded::Off,
        };
        let json = crate::output::render(&Output::Table(t), &style);
        assert!(
            json.starts_with(r#"[{"table":"customer","row":1,"column":"id","value":1},"#),
            "{json}"
        );
    }

    #[test]
    fn an_instance_without_rows_is_the_header_alone() {
        let Output::Table(t) = long_table(vec![table("customer", &["id"], Vec::new())]) else {
            panic!("a table");
        };
        assert_eq!(t.columns, ["Table", "Row", "Column", "Value"]);
        assert!(t.rows.is_empty());
    }
}
