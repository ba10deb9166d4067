use crate::source::{IdError, MAX_ID_BYTES, Param, bind_params, bind_params_json, check_id};
use serde_json::json;

fn texts(v: &[&str]) -> Vec<Param> {
    v.iter().map(|s| Param::Text(s.to_string())).collect()
}

#[test]
fn bind_params_split_on_the_separator_as_given() {
    assert_eq!(bind_params("a, b,,c", ","), texts(&["a", " b", "", "c"]));
    assert_eq!(bind_params("1|2", "|"), texts(&["1", "2"]));
    assert_eq!(bind_params("x::y", "::"), texts(&["x", "y"]));
    assert_eq!(bind_params("", ","), vec![]);
    assert_eq!(bind_params("a,b", ""), texts(&["a,b"]));
}

#[test]
fn bind_params_json_takes_scalars() {
    assert_eq!(
        bind_params_json(&json!([
            "a",
            1,
            -2.5,
            true,
            false,
            null,
            18446744073709551615u64
        ]))
        .unwrap(),
        vec![
            Param::Text("a".into()),
            Param::Int(1),
            Param::Float(-2.5),
            Param::Int(1),
            Param::Int(0),
            Param::Null,
            Param::Float(18446744073709551615u64 as f64),
        ]
    );
}

#[test]
fn bind_params_json_refuses_other_shapes() {
    assert_eq!(
        bind_params_json(&json!({"a": 1})).unwrap_err().to_string(),
        "BIND_PARAMS_JSON must be a JSON array of strings, numbers, booleans or null; \
         found an object"
    );
    assert_eq!(
        bind_params_json(&json!([1, [2]])).unwrap_err().to_string(),
        "BIND_PARAMS_JSON must be a JSON array of strings, numbers, booleans or null; \
         element 2 is an array"
    );
}

#[test]
fn id_rules_and_stand_ins() {
    assert_eq!(check_id("42"), Ok(()));
    assert_eq!(check_id(""), Err(IdError::Empty));
    assert_eq!(check_id(&"x".repeat(MAX_ID_BYTES)), Ok(()));
    let long = "x".repeat(MAX_ID_BYTES + 1);
    assert_eq!(
        check_id(&long).unwrap_err().to_string(),
        "the id is 1025 bytes long; ids are at most 1024 bytes"
    );
    let e = IdError::NotUtf8(vec![0xff, 0x00]);
    assert_eq!(e.to_string(), "the id is not valid UTF-8: x'ff00'");
    assert_eq!(e.stand_in(), "x'ff00'");
    assert_eq!(IdError::Null.stand_in(), "NULL");

    // The message shows 64 bytes; the stand-in keeps them all, so ids that
    // differ only past the 64th byte stay two entities.
    let mut bytes = vec![0xff; 70];
    let a = IdError::NotUtf8(bytes.clone());
    bytes[69] = 0xfe;
    let b = IdError::NotUtf8(bytes);
    let shown = format!("x'{}'...", "ff".repeat(64));
    assert_eq!(a.to_string(), format!("the id is not valid UTF-8: {shown}"));
    assert_eq!(a.to_string(), b.to_string());
    assert_eq!(a.stand_in(), format!("x'{}'", "ff".repeat(70)));
    assert_eq!(b.stand_in(), format!("x'{}fe'", "ff".repeat(69)));
}
