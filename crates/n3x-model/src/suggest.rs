//! "did you mean" hints.

/// Edit distance (Levenshtein) between two short strings.
pub fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The closest candidate, if it is close enough to be what the user meant: a third of
/// the word's length in edits (at least one), or the same word in another case or with
/// `-` and `_` swapped.
pub fn did_you_mean<'c>(word: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    let norm = |s: &str| s.to_ascii_lowercase().replace('-', "_");
    let budget = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (if norm(c) == norm(word) { 0 } else { distance(word, c) }, c))
        .filter(|(d, _)| *d <= budget)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints() {
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(did_you_mean("hardwre", ["hardware", "role"]), Some("hardware"));
        assert_eq!(did_you_mean("heartbeat-ms", ["heartbeat_ms"]), Some("heartbeat_ms"));
        assert_eq!(did_you_mean("zzzzzz", ["hardware", "role"]), None);
    }
}
