//! PostgreSQL values as the SQLite values the rest of batchsh works with
//! (an entity id, an LU store's cell), decoded from the binary form the
//! server sends:
//!
//! | PostgreSQL | SQLite |
//! |---|---|
//! | `smallint`, `integer`, `bigint`, `oid` | INTEGER |
//! | `boolean` | INTEGER 1 or 0 |
//! | `real`, `double precision` | REAL |
//! | `numeric` | INTEGER when whole and within 64 bits, else TEXT, exactly as PostgreSQL prints it (`12.50`) |
//! | `text`, `varchar`, `char(n)`, `name`, `citext`, enums, `json`, `jsonb`, `xml` | TEXT |
//! | `uuid` | TEXT (`a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11`) |
//! | `date`, `time`, `timestamp`, `timestamptz` | TEXT (`2026-01-31`, `13:45:00`, `2026-01-31 13:45:00`, `2026-01-31 12:45:00+00`: a `timestamptz` in UTC) |
//! | `bytea` | BLOB |
//! | a domain | as its base type |
//!
//! Any other type (arrays, intervals, geometry...) is not [`readable`]: the
//! query is then asked for it as text, as PostgreSQL prints it.

use postgres::types::{FromSql, Kind, Type};
use rusqlite::types::Value;
use std::error::Error;
use std::fmt::Write;

type Res<T> = Result<T, Box<dyn Error + Sync + Send>>;

/// One cell, decoded.
pub struct Cell(pub Value);

impl<'a> FromSql<'a> for Cell {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Res<Cell> {
        decode(ty, raw).map(Cell)
    }

    fn from_sql_null(_: &Type) -> Res<Cell> {
        Ok(Cell(Value::Null))
    }

    fn accepts(ty: &Type) -> bool {
        readable(ty)
    }
}

/// Whether [`Cell`] can decode values of `ty`.
pub fn readable(ty: &Type) -> bool {
    match ty.kind() {
        Kind::Enum(_) => true,
        Kind::Domain(base) => readable(base),
        Kind::Simple => {
            matches!(
                *ty,
                Type::BOOL
                    | Type::INT2
                    | Type::INT4
                    | Type::INT8
                    | Type::OID
                    | Type::FLOAT4
                    | Type::FLOAT8
                    | Type::NUMERIC
                    | Type::BYTEA
                    | Type::UUID
                    | Type::DATE
                    | Type::TIME
                    | Type::TIMESTAMP
                    | Type::TIMESTAMPTZ
                    | Type::JSONB
            ) || is_text(ty)
        }
        _ => false,
    }
}

/// Types whose binary form is their text, in UTF-8.
fn is_text(ty: &Type) -> bool {
    matches!(
        *ty,
        Type::TEXT
            | Type::VARCHAR
            | Type::BPCHAR
            | Type::NAME
            | Type::UNKNOWN
            | Type::CHAR
            | Type::JSON
            | Type::XML
    ) || matches!(ty.name(), "citext" | "ltree" | "lquery" | "ltxtquery")
}

fn decode(ty: &Type, raw: &[u8]) -> Res<Value> {
    if let Kind::Domain(base) = ty.kind() {
        return decode(base, raw);
    }
    if let Kind::Enum(_) = ty.kind() {
        return text(raw);
    }
    Ok(match *ty {
        Type::BOOL => Value::Integer(i64::from(bool::from_sql(ty, raw)?)),
        Type::INT2 => Value::Integer(i16::from_sql(ty, raw)?.into()),
        Type::INT4 => Value::Integer(i32::from_sql(ty, raw)?.into()),
        Type::INT8 => Value::Integer(i64::from_sql(ty, raw)?),
        Type::OID => Value::Integer(u32::from_sql(ty, raw)?.into()),
        Type::FLOAT4 => Value::Real(f32::from_sql(ty, raw)?.into()),
        Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
        Type::NUMERIC => {
            let s = numeric(raw)?;
            match s.parse::<i64>() {
                Ok(i) => Value::Integer(i),
                Err(_) => Value::Text(s),
            }
        }
        Type::BYTEA => Value::Blob(raw.to_vec()),
        Type::UUID => Value::Text(uuid(raw)?),
        Type::DATE => Value::Text(date(i32::from_be_bytes(fixed(raw)?))),
        Type::TIME => Value::Text(time_of_day(i64::from_be_bytes(fixed(raw)?))),
        Type::TIMESTAMP => Value::Text(timestamp(i64::from_be_bytes(fixed(raw)?))),
        Type::TIMESTAMPTZ => {
            let mut s = timestamp(i64::from_be_bytes(fixed(raw)?));
            if !s.ends_with("infinity") {
                s.push_str("+00");
            }
            Value::Text(s)
        }
        // A version byte (1), then the text.
        Type::JSONB => match raw.split_first() {
            Some((1, rest)) => return text(rest),
            _ => return Err("unknown jsonb version".into()),
        },
        _ => return text(raw),
    })
}

fn text(raw: &[u8]) -> Res<Value> {
    Ok(Value::Text(std::str::from_utf8(raw)?.to_string()))
}

fn fixed<const N: usize>(raw: &[u8]) -> Res<[u8; N]> {
    raw.try_into()
        .map_err(|_| format!("{} bytes where {N} were expected", raw.len()).into())
}

fn uuid(raw: &[u8]) -> Res<String> {
    let b: [u8; 16] = fixed(raw)?;
    let mut s = String::with_capacity(36);
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        let _ = write!(s, "{byte:02x}");
    }
    Ok(s)
}

/// A `numeric` as PostgreSQL prints it: base-10000 digits, the weight of
/// the first, a sign, and the number of decimals shown.
fn numeric(raw: &[u8]) -> Res<String> {
    let word = |i: usize| -> Res<i16> {
        Ok(i16::from_be_bytes(fixed(
            raw.get(2 * i..2 * i + 2).unwrap_or(&[]),
        )?))
    };
    let ndigits = usize::try_from(word(0)?)?;
    let weight = i32::from(word(1)?);
    let sign = word(2)? as u16;
    let dscale = usize::try_from(word(3)?)?;
    match sign {
        0xC000 => return Ok("NaN".into()),
        0xD000 => return Ok("Infinity".into()),
        0xF000 => return Ok("-Infinity".into()),
        _ => {}
    }
    let digits = (0..ndigits)
        .map(|i| word(4 + i))
        .collect::<Res<Vec<i16>>>()?;
    let digit = |i: i32| -> i16 {
        usize::try_from(i)
            .ok()
            .and_then(|i| digits.get(i).copied())
            .unwrap_or(0)
    };
    let mut s = String::new();
    if sign == 0x4000 {
        s.push('-');
    }
    if weight < 0 {
        s.push('0');
    } else {
        for i in 0..=weight {
            if i == 0 {
                let _ = write!(s, "{}", digit(i));
            } else {
                let _ = write!(s, "{:04}", digit(i));
            }
        }
    }
    if dscale > 0 {
        s.push('.');
        let mut frac = String::new();
        let mut i = weight + 1;
        while frac.len() < dscale {
            let _ = write!(frac, "{:04}", digit(i));
            i += 1;
        }
        s.push_str(&frac[..dscale]);
    }
    Ok(s)
}

/// Days since 2000-01-01 as `YYYY-MM-DD` (`YYYY-MM-DD BC` before year 1).
fn date(days: i32) -> String {
    match days {
        i32::MAX => return "infinity".into(),
        i32::MIN => return "-infinity".into(),
        _ => {}
    }
    let (y, m, d) = civil(i64::from(days) + DAYS_1970_TO_2000);
    if y > 0 {
        format!("{y:04}-{m:02}-{d:02}")
    } else {
        format!("{:04}-{m:02}-{d:02} BC", 1 - y)
    }
}

/// Microseconds since 2000-01-01 00:00 as `YYYY-MM-DD HH:MM:SS[.ffffff]`.
fn timestamp(us: i64) -> String {
    match us {
        i64::MAX => return "infinity".into(),
        i64::MIN => return "-infinity".into(),
        _ => {}
    }
    const DAY: i64 = 86_400_000_000;
    let days = us.div_euclid(DAY);
    let mut s = date(days as i32);
    let bc = s.strip_suffix(" BC").map(str::to_string);
    if let Some(d) = &bc {
        s = d.clone();
    }
    s.push(' ');
    s.push_str(&time_of_day(us.rem_euclid(DAY)));
    if bc.is_some() {
        s.push_str(" BC");
    }
    s
}

/// Microseconds since midnight as `HH:MM:SS[.ffffff]`, trailing zeros of
/// the fraction dropped, as PostgreSQL prints it.
fn time_of_day(us: i64) -> String {
    let secs = us / 1_000_000;
    let frac = us % 1_000_000;
    let mut s = format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
    if frac != 0 {
        let f = format!(".{frac:06}");
        s.push_str(f.trim_end_matches('0'));
    }
    s
}

const DAYS_1970_TO_2000: i64 = 10_957;

/// Days since 1970-01-01 as a proleptic Gregorian (year, month, day)
/// (H. Hinnant's `civil_from_days`).
fn civil(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(ndigits: i16, weight: i16, sign: u16, dscale: i16, digits: &[i16]) -> String {
        let mut raw = Vec::new();
        for w in [ndigits, weight, sign as i16, dscale].iter().chain(digits) {
            raw.extend_from_slice(&w.to_be_bytes());
        }
        numeric(&raw).unwrap()
    }

    #[test]
    fn numerics_print_as_postgresql_prints_them() {
        assert_eq!(num(1, 0, 0, 0, &[42]), "42");
        assert_eq!(num(2, 1, 0, 0, &[1, 2345]), "12345");
        assert_eq!(num(2, 0, 0, 2, &[12, 5000]), "12.50");
        assert_eq!(num(1, -1, 0x4000, 3, &[50]), "-0.005");
        assert_eq!(num(0, 0, 0, 0, &[]), "0");
        assert_eq!(num(0, 0, 0, 2, &[]), "0.00");
        assert_eq!(num(1, 2, 0, 0, &[7]), "700000000");
        assert_eq!(num(0, 0, 0xC000, 0, &[]), "NaN");
    }

    #[test]
    fn dates_and_times_print_in_iso_form() {
        assert_eq!(date(0), "2000-01-01");
        assert_eq!(date(-1), "1999-12-31");
        assert_eq!(date(9527), "2026-01-31");
        assert_eq!(date(i32::MAX), "infinity");
        assert_eq!(date(-730_120), "0001-12-31 BC");
        assert_eq!(date(-730_119), "0001-01-01");
        assert_eq!(timestamp(0), "2000-01-01 00:00:00");
        assert_eq!(
            timestamp(86_400_000_000 + 3_723_500_000),
            "2000-01-02 01:02:03.5"
        );
        assert_eq!(timestamp(-1), "1999-12-31 23:59:59.999999");
        assert_eq!(time_of_day(49_500_000_000), "13:45:00");
    }

    #[test]
    fn a_uuid_is_its_usual_text() {
        let raw: Vec<u8> = (0..16).collect();
        assert_eq!(uuid(&raw).unwrap(), "00010203-0405-0607-0809-0a0b0c0d0e0f");
        assert!(uuid(&raw[..3]).is_err());
    }
}
