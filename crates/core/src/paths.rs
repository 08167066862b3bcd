//! Which URL paths an experiment applies to: exact paths, globs, and `~`-prefixed regexes.
//!
//! Globs: `*` matches within one segment (no `/`), `**` matches across segments (a whole `/**`
//! segment also matches zero segments), `?` matches one character other than `/`. A `~` pattern
//! is a regex searched anywhere in the path (anchor it with `^…$`), as in nginx's `location ~`.
//! Patterns see the path only, never the query string.

use regex_lite::Regex;

/// Compiled path patterns; empty means "every path".
#[derive(Debug, Clone, Default)]
pub struct PathMatcher {
    exact: Vec<String>,
    patterns: Vec<Regex>,
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
                let compiled = Regex::new(regex).map_err(|e| (index, format!("regex `{regex}`: {e}")))?;
                matcher.patterns.push(compiled);
            } else if pattern.contains(['*', '?']) {
                matcher
                    .patterns
                    .push(glob_to_regex(pattern).map_err(|reason| (index, reason))?);
            } else {
                check_plain_path(pattern).map_err(|reason| (index, reason))?;
                matcher.exact.push(pattern.clone());
            }
        }
        Ok(matcher)
    }

    /// Whether `path` (without query string) is one the experiment applies to.
    pub fn matches(&self, path: &str) -> bool {
        (self.exact.is_empty() && self.patterns.is_empty())
            || self.exact.iter().any(|exact| exact == path)
            || self.patterns.iter().any(|pattern| pattern.is_match(path))
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

fn glob_to_regex(glob: &str) -> Result<Regex, String> {
    check_plain_path(glob)?;
    if glob.contains("***") {
        return Err(format!(
            "`{glob}` has `***`; use `*` within a segment or `**` across segments"
        ));
    }
    let mut regex = String::from("^");
    let mut chars = glob.chars().peekable();
    while let Some(c) = chars.next() {
        // A whole `/**` segment also matches zero segments: `/docs/**` matches `/docs` and
        // `/a/**/b` matches `/a/b`.
        if c == '/' && chars.clone().take(2).eq("**".chars()) && matches!(chars.clone().nth(2), None | Some('/')) {
            chars.next();
            chars.next();
            regex.push_str("(?:/.*)?");
            continue;
        }
        match c {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                regex.push_str(".*");
            }
            '*' => regex.push_str("[^/]*"),
            '?' => regex.push_str("[^/]"),
            _ => regex.push_str(&regex_lite::escape(c.encode_utf8(&mut [0; 4]))),
        }
    }
    regex.push('$');
    Regex::new(&regex).map_err(|e| format!("glob `{glob}`: {e}"))
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
