//! One cell of LU data as the store compares it: an SQLite value with its
//! storage class, hashable so that rows can be matched by content.

use rusqlite::ToSql;
use rusqlite::types::{ToSqlOutput, Value, ValueRef};

/// Two values are equal when their storage class and value are: `1`,
/// `1.0` and `'1'` are three different values, so a source column that
/// changes type is an update. Text that is not UTF-8 is a blob of the same
/// bytes (as the source layer reads it). A real is kept as its bits with
/// `-0.0` read as `0.0`, the one pair of distinct bits `==` calls equal;
/// SQLite has no NaN (it stores NULL), so bit equality is value equality.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Atom {
    Null,
    Int(i64),
    Real(u64),
    Text(String),
    Blob(Vec<u8>),
}

impl Atom {
    pub fn real(f: f64) -> Atom {
        Atom::Real(if f == 0.0 { 0.0f64 } else { f }.to_bits())
    }

    pub fn from_ref(v: ValueRef<'_>) -> Atom {
        match v {
            ValueRef::Null => Atom::Null,
            ValueRef::Integer(i) => Atom::Int(i),
            ValueRef::Real(f) => Atom::real(f),
            ValueRef::Text(b) => match std::str::from_utf8(b) {
                Ok(s) => Atom::Text(s.to_string()),
                Err(_) => Atom::Blob(b.to_vec()),
            },
            ValueRef::Blob(b) => Atom::Blob(b.to_vec()),
        }
    }
}

impl From<Value> for Atom {
    fn from(v: Value) -> Atom {
        match v {
            Value::Null => Atom::Null,
            Value::Integer(i) => Atom::Int(i),
            Value::Real(f) => Atom::real(f),
            Value::Text(s) => Atom::Text(s),
            Value::Blob(b) => Atom::Blob(b),
        }
    }
}

impl ToSql for Atom {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Atom::Null => ValueRef::Null,
            Atom::Int(i) => ValueRef::Integer(*i),
            Atom::Real(bits) => ValueRef::Real(f64::from_bits(*bits)),
            Atom::Text(s) => ValueRef::Text(s.as_bytes()),
            Atom::Blob(b) => ValueRef::Blob(b),
        }))
    }
}
