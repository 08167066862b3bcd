//! Regular expressions for targeting (`$regex`, `$regexi`) and paths (`~` patterns), with the
//! common literal shapes answered without running the regex engine.
//!
//! Most targeting regexes are literals with anchors: `^Mozilla`, `Mobile`, `\.pdf$`,
//! `^(Chrome|Firefox)`, `^(de|at|ch)$`. For exactly those shapes (a body of literal text, or one
//! group of literal alternatives, optionally anchored at either end) a match is a `starts_with`,
//! `ends_with`, `contains` or equality test, several times faster than regex-lite's PikeVM, which
//! every other pattern still runs. The shapes are recognised conservatively: any character with a
//! meaning in a regex outside the few accepted escapes sends the pattern to the regex engine.

use regex_lite::{Regex, RegexBuilder};

/// A compiled pattern: the regex (always compiled, so invalid patterns are rejected exactly as
/// before) and, when the pattern is a literal shape, the literal test that answers for it.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    regex: Regex,
    literal: Option<Literal>,
}

/// `^?(alt|alt|…)$?` or `^?literal$?` with literal alternatives.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Literal {
    alternatives: Vec<String>,
    at_start: bool,
    at_end: bool,
    /// ASCII case folding (regex-lite's case-insensitive mode folds ASCII only).
    fold: bool,
}

impl Pattern {
    /// Compiles `pattern`; `case_insensitive` is `$regexi`.
    pub(crate) fn new(pattern: &str, case_insensitive: bool) -> Result<Pattern, regex_lite::Error> {
        let regex = RegexBuilder::new(pattern).case_insensitive(case_insensitive).build()?;
        Ok(Pattern {
            regex,
            literal: literal_shape(pattern, case_insensitive),
        })
    }

    /// Whether the pattern matches anywhere in `haystack`.
    pub(crate) fn is_match(&self, haystack: &str) -> bool {
        match &self.literal {
            Some(literal) => literal.is_match(haystack.as_bytes()),
            None => self.regex.is_match(haystack),
        }
    }
}

impl Literal {
    fn is_match(&self, haystack: &[u8]) -> bool {
        self.alternatives.iter().any(|alternative| {
            let needle = alternative.as_bytes();
            match (self.at_start, self.at_end) {
                (true, true) => self.equal(haystack, needle),
                (true, false) => haystack
                    .get(..needle.len())
                    .is_some_and(|head| self.equal(head, needle)),
                (false, true) => haystack
                    .len()
                    .checked_sub(needle.len())
                    .is_some_and(|start| self.equal(&haystack[start..], needle)),
                (false, false) => {
                    needle.is_empty() || haystack.windows(needle.len()).any(|window| self.equal(window, needle))
                }
            }
        })
    }

    fn equal(&self, a: &[u8], b: &[u8]) -> bool {
        if self.fold { a.eq_ignore_ascii_case(b) } else { a == b }
    }
}

/// Characters with a meaning in a regex; a pattern using any of them unescaped is not a literal.
const META: &[char] = &['\\', '.', '+', '*', '?', '(', ')', '[', ']', '{', '}', '|', '^', '$'];

/// The literal shape of `pattern`, if it has one.
fn literal_shape(pattern: &str, fold: bool) -> Option<Literal> {
    // Non-ASCII letters fold by Unicode rules in regex-lite's case-insensitive mode: leave those
    // to the regex engine.
    if fold && !pattern.is_ascii() {
        return None;
    }
    let (at_start, rest) = match pattern.strip_prefix('^') {
        Some(rest) => (true, rest),
        None => (false, pattern),
    };
    // A trailing `$` is an anchor unless escaped (an odd number of backslashes before it).
    let (at_end, body) = match rest.strip_suffix('$') {
        Some(body) if body.chars().rev().take_while(|&c| c == '\\').count() % 2 == 0 => (true, body),
        _ => (false, rest),
    };
    let group = body
        .strip_prefix("(?:")
        .or_else(|| body.strip_prefix('('))
        .and_then(|inner| inner.strip_suffix(')'));
    let alternatives = match group {
        Some(inner) => inner.split('|').map(unescape).collect::<Option<Vec<_>>>()?,
        None => vec![unescape(body)?],
    };
    Some(Literal {
        alternatives,
        at_start,
        at_end,
        fold,
    })
}

/// The text a literal piece matches, or `None` if it is not plain literal text: only
/// punctuation may be escaped (`\.`, `\/`, `\-`, ...), since `\d`, `\b`, `\n` and the like mean
/// something else.
fn unescape(piece: &str) -> Option<String> {
    let mut out = String::with_capacity(piece.len());
    let mut chars = piece.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next()? {
                escaped if escaped.is_ascii_punctuation() => out.push(escaped),
                _ => return None,
            },
            c if META.contains(&c) => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(pattern: &str) -> Option<(Vec<&'static str>, bool, bool)> {
        literal_shape(pattern, false).map(|l| {
            let alternatives = l.alternatives.into_iter().map(|a| &*a.leak()).collect();
            (alternatives, l.at_start, l.at_end)
        })
    }

    #[test]
    fn literal_shapes_are_recognised_and_nothing_else() {
        assert_eq!(
            shape("^(Chrome|Firefox)"),
            Some((vec!["Chrome", "Firefox"], true, false))
        );
        assert_eq!(shape("(?:de|at)$"), Some((vec!["de", "at"], false, true)));
        assert_eq!(shape(r"\.pdf$"), Some((vec![".pdf"], false, true)));
        assert_eq!(shape(r"^/shop/item\-1$"), Some((vec!["/shop/item-1"], true, true)));
        assert_eq!(shape("Mobile"), Some((vec!["Mobile"], false, false)));
        assert_eq!(shape(r"end\$"), Some((vec!["end$"], false, false)));
        assert_eq!(shape(""), Some((vec![""], false, false)));
        for not_literal in [
            "a.b", "a+", r"\d", r"\bword", "[ab]", "a|b", "(a|b)c", "(a(b))", "a{2}", "(?i)a", r"\n", "a$b", "^^a",
            "(a)(b)", r"a\",
        ] {
            assert_eq!(shape(not_literal), None, "{not_literal}");
        }
        // Case-insensitive patterns with non-ASCII letters stay with the regex engine.
        assert!(literal_shape("straße", true).is_none());
    }

    /// Every pattern over a small alphabet of literal text, metacharacters and escapes, against
    /// every short haystack over the same letters: the literal test answers as the regex does.
    #[test]
    fn literal_answers_agree_with_the_regex_engine() {
        let pieces = ["a", "B", "b", "-", r"\-", ".", "|", "(", ")", "^", "$", r"\$", "é"];
        let mut patterns = vec![String::new()];
        for _ in 0..3 {
            patterns = patterns
                .iter()
                .flat_map(|p| pieces.iter().map(move |piece| format!("{p}{piece}")))
                .chain(patterns.iter().cloned())
                .collect();
        }
        patterns.sort();
        patterns.dedup();
        let letters = ["a", "B", "-", "$", "é"];
        let mut haystacks = vec![String::new()];
        for _ in 0..3 {
            haystacks = haystacks
                .iter()
                .flat_map(|h| letters.iter().map(move |l| format!("{h}{l}")))
                .chain(haystacks.iter().cloned())
                .collect();
        }
        let mut literal_patterns = 0;
        for pattern in &patterns {
            for fold in [false, true] {
                let Ok(compiled) = Pattern::new(pattern, fold) else {
                    continue;
                };
                if compiled.literal.is_none() {
                    continue;
                }
                literal_patterns += 1;
                for haystack in &haystacks {
                    assert_eq!(
                        compiled.is_match(haystack),
                        compiled.regex.is_match(haystack),
                        "pattern {pattern:?} (case-insensitive: {fold}) on {haystack:?}"
                    );
                }
            }
        }
        assert!(
            literal_patterns > 300,
            "only {literal_patterns} literal patterns exercised"
        );
    }
}
