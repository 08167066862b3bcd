//! Which URL paths an experiment applies to: exact paths, globs, and `~`-prefixed regexes.
//!
//! Globs: `*` matches within one segment (no `/`), `**` matches across segments (a whole `/**`
//! segment also matches zero segments), `?` matches one character other than `/`. A `~` pattern
//! is a regex searched anywhere in the path (anchor it with `^…$`), as in nginx's `location ~`.
//! Patterns see the path only, never the query string.

use crate::pattern::Pattern;

/// Compiled path patterns; empty means "every path".
#[derive(Debug, Clone, Default)]
pub struct PathMatcher {
    exact: Vec<String>,
    globs: Vec<Glob>,
    regexes: Vec<Pattern>,
}

/// Longest pattern accepted, to keep compiled programs small.
const MAX_PATTERN_LEN: usize = 512;

impl PathMatcher {
    /// Compiles patterns; the error carries the index of the bad pattern and why.
    pub fn compile(patterns: &[String]) -> Result<PathMatcher, (usize, String)> {
        let mut matcher = PathMatcher::default();
        for (index, pattern) in patterns.iter().enumerate() {
            if pattern.len() > MAX_PATTERN_LEN {
                return Err((index, format!("longer than {MAX_PATTERN_LEN} characters")));
            }
            if let Some(regex) = pattern.strip_prefix('~') {
                let compiled = Pattern::new(regex, false).map_err(|e| (index, format!("regex `{regex}`: {e}")))?;
                matcher.regexes.push(compiled);
            } else if pattern.contains(['*', '?']) {
                matcher
                    .globs
                    .push(Glob::compile(pattern).map_err(|reason| (index, reason))?);
            } else {
                check_plain_path(pattern).map_err(|reason| (index, reason))?;
                matcher.exact.push(pattern.clone());
            }
        }
        Ok(matcher)
    }

    /// Whether `path` (without query string) is one the experiment applies to.
    pub fn matches(&self, path: &str) -> bool {
        (self.exact.is_empty() && self.globs.is_empty() && self.regexes.is_empty())
            || self.exact.iter().any(|exact| exact == path)
            || self.globs.iter().any(|glob| glob.matches(path.as_bytes()))
            || self.regexes.iter().any(|regex| regex.is_match(path))
    }
}

fn check_plain_path(pattern: &str) -> Result<(), String> {
    if !pattern.starts_with('/') {
        return Err(format!("`{pattern}` must start with `/` (or `~` for a regex)"));
    }
    if let Some(bad) = pattern
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || *c == '#')
    {
        return Err(format!(
            "`{pattern}` contains {bad:?}, which never appears in a URL path"
        ));
    }
    Ok(())
}

/// One piece of a glob.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(Vec<u8>),
    /// `*`: any run of bytes without `/`.
    Star,
    /// `**` inside a segment: any run of bytes.
    DoubleStar,
    /// `?`: one byte other than `/`.
    Question,
    /// A whole `/**` segment: nothing, or `/` followed by anything.
    AnySegments,
}

/// A glob compiled to tokens and matched by a position-set walk: linear in path length times
/// pattern length, with no backtracking blow-up and no regex engine on the hot path.
#[derive(Debug, Clone)]
struct Glob {
    tokens: Vec<Token>,
}

impl Glob {
    fn compile(glob: &str) -> Result<Glob, String> {
        check_plain_path(glob)?;
        if glob.contains("***") {
            return Err(format!(
                "`{glob}` has `***`; use `*` within a segment or `**` across segments"
            ));
        }
        let bytes = glob.as_bytes();
        let mut tokens = Vec::new();
        let mut literal = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            let whole_segment = bytes[i] == b'/'
                && bytes.get(i + 1..i + 3) == Some(b"**")
                && matches!(bytes.get(i + 3), None | Some(b'/'));
            let token = if whole_segment {
                i += 3;
                Token::AnySegments
            } else if bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'*') {
                i += 2;
                Token::DoubleStar
            } else if bytes[i] == b'*' {
                i += 1;
                Token::Star
            } else if bytes[i] == b'?' {
                i += 1;
                Token::Question
            } else {
                literal.push(bytes[i]);
                i += 1;
                continue;
            };
            if !literal.is_empty() {
                tokens.push(Token::Literal(std::mem::take(&mut literal)));
            }
            tokens.push(token);
        }
        if !literal.is_empty() {
            tokens.push(Token::Literal(literal));
        }
        Ok(Glob { tokens })
    }

    fn matches(&self, path: &[u8]) -> bool {
        // One bit per position 0..=len. Paths up to 1023 bytes keep both sets on the stack, so
        // matching allocates nothing per experiment; longer ones (rare) use the heap.
        const STACK_WORDS: usize = 16;
        let words = (path.len() + 1).div_ceil(64);
        if words <= STACK_WORDS {
            let (mut reachable, mut next) = ([0u64; STACK_WORDS], [0u64; STACK_WORDS]);
            self.walk(path, &mut reachable[..words], &mut next[..words])
        } else {
            self.walk(path, &mut vec![0; words], &mut vec![0; words])
        }
    }

    /// `reachable` holds the positions where the tokens so far can have matched `path[..i]`.
    fn walk<'b>(&self, path: &[u8], mut reachable: &'b mut [u64], mut next: &'b mut [u64]) -> bool {
        let end = path.len();
        set(reachable, 0);
        for token in &self.tokens {
            next.fill(0);
            for start in 0..=end {
                if !get(reachable, start) {
                    continue;
                }
                match token {
                    Token::Literal(text) => {
                        if path[start..].starts_with(text) {
                            set(next, start + text.len());
                        }
                    }
                    Token::Question => {
                        if path.get(start).is_some_and(|&b| b != b'/') {
                            set(next, start + 1);
                        }
                    }
                    Token::Star => {
                        set(next, start);
                        for (offset, &b) in path[start..].iter().enumerate() {
                            if b == b'/' {
                                break;
                            }
                            set(next, start + offset + 1);
                        }
                    }
                    Token::DoubleStar => {
                        (start..=end).for_each(|i| set(next, i));
                        break; // every later position is already reachable
                    }
                    Token::AnySegments => {
                        set(next, start);
                        if path.get(start) == Some(&b'/') {
                            (start + 1..=end).for_each(|i| set(next, i));
                            break;
                        }
                    }
                }
            }
            std::mem::swap(&mut reachable, &mut next);
            if reachable.iter().all(|&word| word == 0) {
                return false;
            }
        }
        get(reachable, end)
    }
}

fn set(bits: &mut [u64], i: usize) {
    bits[i / 64] |= 1 << (i % 64);
}

fn get(bits: &[u64], i: usize) -> bool {
    bits[i / 64] & (1 << (i % 64)) != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(patterns: &[&str]) -> PathMatcher {
        PathMatcher::compile(&patterns.iter().map(|p| p.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn globs_and_exact_paths() {
        let m = matcher(&["/pricing", "/blog/*", "/docs/**", "/p/?"]);
        assert!(m.matches("/pricing"));
        assert!(!m.matches("/pricing/"));
        assert!(m.matches("/blog/hello"));
        assert!(!m.matches("/blog/hello/comments"));
        assert!(m.matches("/docs/a/b/c"));
        assert!(m.matches("/docs"), "a trailing /** also matches the bare prefix");
        assert!(m.matches("/docs/"));
        let middle = matcher(&["/a/**/b"]);
        assert!(middle.matches("/a/b") && middle.matches("/a/x/y/b"));
        assert!(!middle.matches("/a/xb") && !middle.matches("/ab"));
        assert!(
            matcher(&["/a**"]).matches("/a/b/c"),
            "`**` inside a segment crosses segments"
        );
        assert!(m.matches("/p/1"));
        assert!(!m.matches("/p/12"));
        assert!(!m.matches("/other"));
        assert!(matcher(&[]).matches("/anything"));
        assert!(matcher(&["/a.b"]).matches("/a.b"));
        assert!(!matcher(&["/a.*"]).matches("/aXb"));
    }

    /// The same glob semantics written as a regex, to check the token walker against.
    fn glob_as_regex(glob: &str) -> regex_lite::Regex {
        let mut regex = String::from("^");
        let mut rest = glob;
        while !rest.is_empty() {
            let whole = rest.starts_with("/**") && (rest.len() == 3 || rest[3..].starts_with('/'));
            let (piece, len) = if whole {
                ("(?:/.*)?".to_string(), 3)
            } else if rest.starts_with("**") {
                (".*".to_string(), 2)
            } else if rest.starts_with('*') {
                ("[^/]*".to_string(), 1)
            } else if rest.starts_with('?') {
                ("[^/]".to_string(), 1)
            } else {
                (regex_lite::escape(&rest[..1]), 1)
            };
            regex.push_str(&piece);
            rest = &rest[len..];
        }
        regex.push('$');
        regex_lite::Regex::new(&regex).unwrap()
    }

    #[test]
    fn glob_walker_agrees_with_regex_semantics() {
        // Every glob over a small alphabet against every path over it, up to small lengths.
        let glob_alphabet = ["a", "/", "*", "**", "?", "b"];
        let path_alphabet = ["a", "b", "/"];
        let mut globs = vec![String::from("/")];
        for _ in 0..3 {
            globs = globs
                .iter()
                .flat_map(|g| glob_alphabet.iter().map(move |piece| format!("{g}{piece}")))
                .filter(|g| !g.contains("***"))
                .collect();
            let mut paths = vec![String::new()];
            for _ in 0..5 {
                let longer: Vec<String> = paths
                    .iter()
                    .flat_map(|p| path_alphabet.iter().map(move |c| format!("{p}{c}")))
                    .collect();
                paths.extend(longer);
                paths.dedup();
            }
            for glob in &globs {
                let walker = Glob::compile(glob).unwrap();
                let regex = glob_as_regex(glob);
                for path in paths.iter().map(|p| format!("/{p}")) {
                    assert_eq!(
                        walker.matches(path.as_bytes()),
                        regex.is_match(&path),
                        "glob {glob} path {path}"
                    );
                }
            }
        }
    }

    #[test]
    fn paths_longer_than_the_stack_sets_still_match() {
        let segment = "x".repeat(1500);
        let long = format!("/docs/{segment}/end");
        let m = matcher(&["/docs/**/end"]);
        assert!(m.matches(&long));
        assert!(!m.matches(&format!("{long}/more")));
        assert!(matcher(&["/docs/*/end"]).matches(&long));
        assert!(!matcher(&["/docs/*"]).matches(&long));
        // The boundary of the stack sets: 1023 and 1024 bytes.
        for len in [1022, 1023, 1024] {
            let path = format!("/{}", "y".repeat(len - 1));
            assert_eq!(path.len(), len);
            assert!(matcher(&["/*"]).matches(&path));
            assert!(matcher(&["/y?*"]).matches(&path));
        }
    }

    #[test]
    fn regexes() {
        let m = matcher(&["~^/product/[0-9]+$"]);
        assert!(m.matches("/product/42"));
        assert!(!m.matches("/product/x"));
    }

    #[test]
    fn bad_patterns_name_their_index() {
        let bad = |patterns: &[&str]| {
            PathMatcher::compile(&patterns.iter().map(|p| p.to_string()).collect::<Vec<_>>()).unwrap_err()
        };
        assert_eq!(bad(&["/ok", "nope"]).0, 1);
        assert!(bad(&["/a/***"]).1.contains("***"));
        assert!(bad(&["~(unclosed"]).1.contains("regex"));
        assert!(bad(&["/with space"]).1.contains("' '"));
    }
}
