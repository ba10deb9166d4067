//! "Did you mean ...?": the closest of some known words to one that was
//! mistyped. The parser asks it of keywords and option names, the store of
//! catalog names and batch ids; it knows nothing of either.

/// Longer words are never taken for typos (keywords are shorter).
const MAX_TYPO_LEN: usize = 64;

/// The closest of `candidates` to `word` (case-insensitive), when it is close
/// enough to be a likely typo.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    // A word this long is no typo of a keyword; checking costs its length
    // once per candidate, which a 10 MB word turns into seconds.
    if word.len() > MAX_TYPO_LEN {
        return None;
    }
    let w = word.to_ascii_uppercase();
    let candidates: Vec<&str> = candidates.into_iter().collect();
    let mut best: Option<(usize, &str)> = None;
    for &c in &candidates {
        let d = edit_distance(&w, &c.to_ascii_uppercase());
        // Allow about one typo per three letters, at least one.
        let limit = (c.len().max(w.len()) / 3).max(1);
        if d <= limit && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
        .or_else(|| only_longer_form(&w, &candidates))
}

/// The one candidate that is `word` with more words after an underscore
/// (`MAX_WORKERS` -> `MAX_WORKERS_PER_NODE`): too far for a typo, but
/// plainly what was meant. `None` when there are several.
fn only_longer_form<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let prefix = format!("{word}_");
    let mut found = candidates
        .iter()
        .filter(|c| c.to_ascii_uppercase().starts_with(&prefix));
    match (found.next(), found.next()) {
        (Some(c), None) => Some(c),
        _ => None,
    }
}

/// Levenshtein distance with transpositions counted as one edit (optimal
/// string alignment), on chars.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len() > MAX_TYPO_LEN || b.len() > MAX_TYPO_LEN {
        return usize::MAX;
    }
    let mut prev2 = vec![0usize; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0usize; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(prev2[j - 2] + 1);
            }
            cur[j] = v;
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_cut_short_at_an_underscore_suggests_the_whole_name() {
        let names = ["MAX_WORKERS_PER_NODE", "MAX_NODES", "MAX_RETRIES"];
        assert_eq!(suggest("max_workers", names), Some("MAX_WORKERS_PER_NODE"));
        // Two longer forms: no guess.
        assert_eq!(suggest("BIND", ["BIND_PARAMS", "BIND_PARAMS_JSON"]), None);
        assert_eq!(suggest("MAX", names), None);
    }

    #[test]
    fn transposition_is_one_edit() {
        assert_eq!(edit_distance("ab", "ba"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
