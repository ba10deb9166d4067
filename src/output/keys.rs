//! JSON keys from display column names (SPEC §10): snake_case, with the
//! spec's fixed names for the columns whose display name does not reduce
//! to a good key.

use std::collections::HashSet;

/// Display names whose key the spec fixes rather than derives.
const ODD_KEYS: &[(&str, &str)] = &[
    ("% Completed", "pct_completed"),
    ("Ent./sec (pace)", "pace"),
    ("Ent./sec (avg.)", "avg_rate"),
    ("Remaining dur.", "remaining_duration"),
    ("Process time (ms)", "process_time_ms"),
    ("Time at work (ms)", "time_at_work_ms"),
];

/// The JSON key for a display name: `Entity ID` -> `entity_id`.
///
/// Lower case; `%` reads as the word `pct` (so `Completion %` keeps its
/// meaning as `completion_pct`); every other run of characters that are not
/// letters or digits becomes one `_`; none at either end.
pub fn json_key(column: &str) -> String {
    if let Some((_, key)) = ODD_KEYS.iter().find(|(name, _)| *name == column) {
        return (*key).to_string();
    }
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    for c in column.chars() {
        if c.is_alphanumeric() {
            word.extend(c.to_lowercase());
            continue;
        }
        if !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
        if c == '%' {
            words.push("pct".into());
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words.join("_")
}

/// The keys for `names`, made unique with `_2`, `_3`, ... so that two
/// columns that reduce to one key do not overwrite each other in an object.
pub(super) fn unique_keys<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut seen = HashSet::new();
    names
        .into_iter()
        .map(|name| {
            let base = json_key(name);
            let mut key = base.clone();
            let mut n = 1;
            while !seen.insert(key.clone()) {
                n += 1;
                key = format!("{base}_{n}");
            }
            key
        })
        .collect()
}
