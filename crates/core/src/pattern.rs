//! Regular expressions for targeting (`$regex`, `$regexi`) and paths (`~` patterns), with the
//! common literal shapes answered without running the regex engine.
//!
//! Most targeting regexes are literals with anchors: `^Mozilla`, `Mobile`, `\.pdf$`,
//! `^(Chrome|Firefox)`, `^(de|at|ch)$`. For exactly those shapes (a body of literal text, or one
//! group of literal alternatives, optionally anchored at either end) a match is a `starts_with`,
//! `ends_with`, `contains` or equality test, several times faster than regex-lite's PikeVM, which
//! every other pattern still runs. The shapes are recognised conservatively: any character with a
//! meaning in a regex outside the few accepted escapes sends the pattern to the regex engine.
//!
//! Other patterns often still begin with literal text in every alternative
//! (`(Android 1[0-4]|iPhone OS 1[5-9])`, `^/shop/[a-z]+`): a match can only start where one of
//! those prefixes occurs, so the haystack is searched for them first; without one there is no
//! match, and otherwise the regex engine starts at the first occurrence instead of scanning the
//! whole haystack (its look-arounds still see the whole haystack, so the answer is the same).

use regex_lite::{Regex, RegexBuilder};

/// A compiled pattern: the regex (always compiled, so invalid patterns are rejected exactly as
/// before) and, when the pattern is a literal shape, the literal test that answers for it.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    regex: Regex,
    literal: Option<Literal>,
    prefixes: Option<Prefixes>,
}

/// Literal text every match starts with, one per alternative.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Prefixes {
    alternatives: Vec<String>,
    /// The pattern starts with `^`: a match starts at 0.
    at_start: bool,
    fold: bool,
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
        let literal = literal_shape(pattern, case_insensitive);
        let prefixes = if literal.is_some() {
            None
        } else {
            required_prefixes(pattern, case_insensitive)
        };
        Ok(Pattern {
            regex,
            literal,
            prefixes,
        })
    }

    /// Whether the pattern matches anywhere in `haystack`.
    pub(crate) fn is_match(&self, haystack: &str) -> bool {
        if let Some(literal) = &self.literal {
            return literal.is_match(haystack);
        }
        match &self.prefixes {
            Some(prefixes) => prefixes
                .first_start(haystack)
                .is_some_and(|start| self.regex.is_match_at(haystack, start)),
            None => self.regex.is_match(haystack),
        }
    }
}

impl Prefixes {
    /// Where the earliest possible match starts, if any can.
    fn first_start(&self, haystack: &str) -> Option<usize> {
        if self.at_start {
            let starts = |prefix: &String| starts_with(haystack.as_bytes(), prefix.as_bytes(), self.fold);
            return self.alternatives.iter().any(starts).then_some(0);
        }
        self.alternatives
            .iter()
            .filter_map(|prefix| find(haystack, prefix, self.fold))
            .min()
    }
}

/// The first byte offset of `needle` in `haystack` (ASCII case-insensitively with `fold`): a scan
/// for the first byte (both its cases when folding), then a comparison. Short needles and short
/// haystacks (user agents, paths) do not repay a cleverer search, and this keeps the Wasm small.
fn find(haystack: &str, needle: &str, fold: bool) -> Option<usize> {
    let (bytes, needle) = (haystack.as_bytes(), needle.as_bytes());
    let Some(&first) = needle.first() else {
        return Some(0);
    };
    let (lower, upper) = if fold {
        (first.to_ascii_lowercase(), first.to_ascii_uppercase())
    } else {
        (first, first)
    };
    (0..(bytes.len() + 1).saturating_sub(needle.len())).find(|&i| {
        let window = &bytes[i..i + needle.len()];
        (bytes[i] == lower || bytes[i] == upper) && equal(window, needle, fold)
    })
}

/// Byte equality, ASCII case-insensitive with `fold` (regex-lite's case-insensitive mode folds
/// ASCII only).
fn equal(a: &[u8], b: &[u8], fold: bool) -> bool {
    if fold { a.eq_ignore_ascii_case(b) } else { a == b }
}

fn starts_with(haystack: &[u8], needle: &[u8], fold: bool) -> bool {
    haystack
        .get(..needle.len())
        .is_some_and(|head| equal(head, needle, fold))
}

/// The literal text each top-level alternative of `pattern` starts with, if every one starts with
/// some: `^?(a…|b…)…` or `a…|b…` (unanchored). Anything unusual gives `None`.
fn required_prefixes(pattern: &str, fold: bool) -> Option<Prefixes> {
    if !pattern.is_ascii() {
        return None;
    }
    let (at_start, body) = match pattern.strip_prefix('^') {
        Some(rest) => (true, rest),
        None => (false, pattern),
    };
    let branches: Vec<&str> = if let Some(inner) = body.strip_prefix("(?:").or_else(|| body.strip_prefix('(')) {
        // A leading group: its alternatives start every match (what follows it does not matter).
        let close = group_end(inner)?;
        // An optional or repeatable group may be absent: then it starts nothing.
        if matches!(inner.as_bytes().get(close + 1), Some(b'?' | b'*' | b'{')) {
            return None;
        }
        split_top_level(&inner[..close])?
    } else {
        let branches = split_top_level(body)?;
        // `^a|b` anchors only its first alternative.
        if at_start && branches.len() > 1 {
            return None;
        }
        branches
    };
    let alternatives = branches.into_iter().map(leading_literal).collect::<Option<Vec<_>>>()?;
    Some(Prefixes {
        alternatives,
        at_start,
        fold,
    })
}

/// The index of the `)` closing a group whose `(` came just before `inner`, skipping escapes and
/// character classes; `None` if nested groups or anything unclear make it uncertain.
fn group_end(inner: &str) -> Option<usize> {
    let bytes = inner.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'[' => i = class_end(bytes, i)? + 1,
            b'(' => return None,
            b')' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// The index of the `]` closing the character class opened at `open`; `None` for nested classes.
fn class_end(bytes: &[u8], open: usize) -> Option<usize> {
    let mut i = open + 1;
    if bytes.get(i) == Some(&b'^') {
        i += 1;
    }
    // A `]` first in the class is a literal.
    if bytes.get(i) == Some(&b']') {
        i += 1;
    }
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'[' => return None,
            b']' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// Splits on `|` outside escapes; `None` if a group or class makes the top level unclear.
fn split_top_level(body: &str) -> Option<Vec<&str>> {
    let bytes = body.as_bytes();
    let (mut pieces, mut start, mut i) = (Vec::new(), 0, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'[' => i = class_end(bytes, i)? + 1,
            b'(' | b')' | b']' => return None,
            b'|' => {
                pieces.push(&body[start..i]);
                i += 1;
                start = i;
            }
            _ => i += 1,
        }
    }
    pieces.push(body.get(start..)?);
    Some(pieces)
}

/// The literal text an alternative must start with: its leading plain characters (and escaped
/// punctuation), minus the last one when a quantifier makes it optional or repeated. `None` when
/// that leaves nothing.
fn leading_literal(branch: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = branch.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            '\\' => {
                chars.next();
                match chars.next() {
                    Some(escaped) if escaped.is_ascii_punctuation() => out.push(escaped),
                    _ => break,
                }
            }
            '?' | '*' | '{' => {
                out.pop();
                break;
            }
            // `a+` still starts with one `a`.
            '+' => break,
            c if META.contains(&c) => break,
            c => {
                chars.next();
                out.push(c);
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

impl Literal {
    fn is_match(&self, text: &str) -> bool {
        let haystack = text.as_bytes();
        self.alternatives.iter().any(|alternative| {
            let needle = alternative.as_bytes();
            match (self.at_start, self.at_end) {
                (true, true) => equal(haystack, needle, self.fold),
                (true, false) => starts_with(haystack, needle, self.fold),
                (false, true) => haystack
                    .len()
                    .checked_sub(needle.len())
                    .is_some_and(|start| equal(&haystack[start..], needle, self.fold)),
                (false, false) => find(text, alternative, self.fold).is_some(),
            }
        })
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

    /// Every concatenation of at most `length` items of `alphabet`, without repeats.
    fn words_up_to(alphabet: &[&str], length: usize) -> Vec<String> {
        let mut words = vec![String::new()];
        for _ in 0..length {
            words = words
                .iter()
                .flat_map(|w| alphabet.iter().map(move |item| format!("{w}{item}")))
                .chain(words.iter().cloned())
                .collect();
        }
        words.sort();
        words.dedup();
        words
    }

    #[test]
    fn required_prefixes_are_found_only_where_every_match_starts_with_one() {
        let prefixes = |pattern: &str| required_prefixes(pattern, false).map(|p| (p.alternatives, p.at_start));
        let owned = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            prefixes("(Android 1[0-4]|iPhone OS 1[5-9])"),
            Some((owned(&["Android 1", "iPhone OS 1"]), false))
        );
        assert_eq!(prefixes("^/shop/[a-z]+/item"), Some((owned(&["/shop/"]), true)));
        assert_eq!(prefixes(r"ab?c|x\.y+"), Some((owned(&["a", "x.y"]), false)));
        assert_eq!(prefixes("(?:Mac|Win)[0-9]"), Some((owned(&["Mac", "Win"]), false)));
        for none in [
            "(a|b)?c", "(a|b)*c", "^a|b", "[ab]c", ".a", "(a|)b", "(?i)ab", "a?b", r"\db", "((a))b", "(a(b))c",
        ] {
            assert_eq!(prefixes(none), None, "{none}");
        }
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
    /// every short haystack over the same letters: the literal and leading-literal shortcuts
    /// answer as the regex does.
    #[test]
    fn shortcuts_agree_with_the_regex_engine() {
        let pieces = [
            "a", "B", "b", "-", r"\-", ".", "|", "(", ")", "^", "$", r"\$", "é", "?", "+", "[ab]", r"\d",
        ];
        let patterns = words_up_to(&pieces, 3);
        let haystacks = words_up_to(&["a", "B", "-", "$", "é"], 3);
        let (mut literal_patterns, mut prefixed_patterns) = (0, 0);
        for pattern in &patterns {
            for fold in [false, true] {
                let Ok(compiled) = Pattern::new(pattern, fold) else {
                    continue;
                };
                literal_patterns += usize::from(compiled.literal.is_some());
                prefixed_patterns += usize::from(compiled.prefixes.is_some());
                for haystack in &haystacks {
                    assert_eq!(
                        compiled.is_match(haystack),
                        compiled.regex.is_match(haystack),
                        "pattern {pattern:?} (case-insensitive: {fold}) on {haystack:?}"
                    );
                }
            }
        }
        // Case folding is ASCII's on both paths, as in regex-lite: the Kelvin sign is not a `k`.
        for pattern in ["k", "^k", "(k|x)[0-9]?", "^(?:k|x)"] {
            let compiled = Pattern::new(pattern, true).expect("valid");
            for haystack in ["\u{212A}", "K", "xK1"] {
                assert_eq!(
                    compiled.is_match(haystack),
                    compiled.regex.is_match(haystack),
                    "{pattern} on {haystack}"
                );
            }
        }
        assert!(
            literal_patterns > 300,
            "only {literal_patterns} literal patterns exercised"
        );
        assert!(
            prefixed_patterns > 300,
            "only {prefixed_patterns} prefixed patterns exercised"
        );
    }
}
