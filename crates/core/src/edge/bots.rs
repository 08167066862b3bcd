//! Which user agents are bots: the isbot package's maintained pattern list, generated into
//! [`bot_list`](super::bot_list) by `scripts/generate-bots.mjs` and matched here without running
//! every pattern on every request.
//!
//! isbot matches its patterns case-insensitively as one JavaScript regex. Here the user agent is
//! lower-cased once; the plain-text patterns are found in one pass over it (looked up by first
//! byte), the `^text` patterns by prefix, and each remaining regex runs only when the user agent
//! holds the text every match of it contains. Lookaround, which regex-lite lacks, is translated to
//! a regex plus texts that may not come right before or after a match. `testdata/bots.json` (isbot's
//! own verdicts) holds the two implementations equal.
//!
//! A browser's user agent passes every tier, about 5 µs natively, so the verdicts of the user
//! agents seen last are remembered: a few browser builds send most requests.

use std::sync::{Mutex, OnceLock};

use regex_lite::Regex;

pub use super::bot_list::ISBOT_VERSION;
use super::bot_list::{PREFIXES, REGEXES, SUBSTRINGS};

/// One isbot pattern that is more than text.
#[derive(Debug)]
pub struct BotRegex {
    /// The pattern, lookaround removed; matched against the lower-cased user agent.
    pub regex: &'static str,
    /// Text every match contains: without it in the user agent, the regex cannot match.
    pub required: Option<&'static str>,
    /// Text every match ends the user agent with (a `$`-anchored pattern).
    pub ending: Option<&'static str>,
    /// A match counts only if none of these ends where it starts (a negative lookbehind).
    pub not_before: &'static [&'static str],
    /// A match counts only if none of these starts where it ends (a negative lookahead).
    pub not_after: &'static [&'static str],
}

/// Slots of the remembered verdicts, each holding one user agent (direct-mapped by its hash).
const RECENT_SLOTS: usize = 128;
/// Longer user agents are classified every time, which bounds the memory held to 64 KiB.
const RECENT_MAX_BYTES: usize = 512;

type Recent = [Option<(u64, Box<str>, bool)>; RECENT_SLOTS];
static RECENT: Mutex<Recent> = Mutex::new([const { None }; RECENT_SLOTS]);

/// Whether a user agent is a bot, crawler, monitor or HTTP library by isbot's list. A user agent
/// that is empty or only spaces counts as a bot too: every browser sends one.
pub fn is_bot(user_agent: &str) -> bool {
    if user_agent.trim().is_empty() {
        return true;
    }
    if user_agent.len() > RECENT_MAX_BYTES {
        return classify(user_agent);
    }
    let hash = crate::condition::string_hash(user_agent);
    let slot = (hash % RECENT_SLOTS as u64) as usize;
    if let Ok(recent) = RECENT.lock()
        && let Some((seen_hash, seen, verdict)) = &recent[slot]
        && *seen_hash == hash
        && **seen == *user_agent
    {
        return *verdict;
    }
    let verdict = classify(user_agent);
    if let Ok(mut recent) = RECENT.lock() {
        recent[slot] = Some((hash, user_agent.into(), verdict));
    }
    verdict
}

/// [`is_bot`]'s verdict worked out from the patterns, without the remembered ones.
pub fn classify(user_agent: &str) -> bool {
    if user_agent.trim().is_empty() {
        return true;
    }
    let ua = user_agent.to_ascii_lowercase();
    contains_substring(ua.as_bytes())
        || PREFIXES.iter().any(|prefix| ua.starts_with(prefix))
        || REGEXES
            .iter()
            .enumerate()
            .any(|(index, pattern)| matches_regex(&ua, index, pattern))
}

/// For each first byte, the range of [`SUBSTRINGS`] (sorted) starting with it.
fn substrings_by_first_byte() -> &'static [(u16, u16); 256] {
    static INDEX: OnceLock<[(u16, u16); 256]> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut index = [(0u16, 0u16); 256];
        for (position, marker) in SUBSTRINGS.iter().enumerate() {
            let Some(&first) = marker.as_bytes().first() else {
                continue;
            };
            let entry = &mut index[usize::from(first)];
            let position = u16::try_from(position).expect("fewer than 65,536 substrings");
            if entry.0 == entry.1 {
                *entry = (position, position + 1);
            } else {
                entry.1 = position + 1;
            }
        }
        index
    })
}

/// Whether any of [`SUBSTRINGS`] occurs in `haystack`, in one pass: at each byte only the markers
/// starting with it are compared.
fn contains_substring(haystack: &[u8]) -> bool {
    let index = substrings_by_first_byte();
    (0..haystack.len()).any(|start| {
        let (from, to) = index[usize::from(haystack[start])];
        SUBSTRINGS[usize::from(from)..usize::from(to)]
            .iter()
            .any(|marker| haystack[start..].starts_with(marker.as_bytes()))
    })
}

/// The compiled regexes, each compiled the first time a user agent holds its required text; a
/// pattern regex-lite refused would stay `None` (a test compiles every one).
static COMPILED: [OnceLock<Option<Regex>>; REGEXES.len()] = [const { OnceLock::new() }; REGEXES.len()];

fn matches_regex(ua: &str, index: usize, pattern: &BotRegex) -> bool {
    if pattern.ending.is_some_and(|text| !ua.ends_with(text)) || pattern.required.is_some_and(|text| !ua.contains(text))
    {
        return false;
    }
    let Some(regex) = COMPILED[index].get_or_init(|| Regex::new(pattern.regex).ok()) else {
        return false;
    };
    if pattern.not_before.is_empty() && pattern.not_after.is_empty() {
        return regex.is_match(ua);
    }
    regex.find_iter(ua).any(|found| {
        !pattern
            .not_before
            .iter()
            .any(|text| ua[..found.start()].ends_with(text))
            && !pattern.not_after.iter().any(|text| ua[found.end()..].starts_with(text))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_generated_regex_compiles_in_regex_lite() {
        for pattern in REGEXES {
            assert!(
                Regex::new(pattern.regex).is_ok(),
                "regex-lite refuses {}",
                pattern.regex
            );
        }
    }

    #[test]
    fn prefilter_texts_come_from_their_patterns() {
        // A required text or ending the pattern does not spell out would hide every match.
        for pattern in REGEXES {
            let literal = pattern.regex.replace('\\', "");
            if let Some(text) = pattern.required {
                assert!(literal.contains(text), "{} does not contain {text:?}", pattern.regex);
            }
            if let Some(text) = pattern.ending {
                assert!(
                    literal.ends_with(&format!("{text}$")),
                    "{} does not end with {text:?}",
                    pattern.regex
                );
            }
        }
    }

    /// isbot's own verdicts on real user agents: crawlers, browsers, in-app browsers, phones
    /// whose names contain "bot", HTTP libraries.
    #[test]
    fn agrees_with_isbot_on_the_user_agent_vectors() {
        let vectors: serde_json::Value = serde_json::from_str(include_str!("../../../../testdata/bots.json")).unwrap();
        let cases = vectors["cases"].as_array().unwrap();
        assert!(
            cases.len() >= 70,
            "the vectors cover crawlers, browsers, phones and libraries"
        );
        let mut disagreements = Vec::new();
        for case in cases {
            let ua = case["userAgent"].as_str().unwrap();
            let expected = case["bot"].as_bool().unwrap();
            // Twice: worked out, then remembered.
            if classify(ua) != expected || is_bot(ua) != expected || is_bot(ua) != expected {
                disagreements.push(ua);
            }
        }
        assert!(disagreements.is_empty(), "differs from isbot on {disagreements:#?}");
        assert!(cases.iter().any(|c| c["bot"] == true) && cases.iter().any(|c| c["bot"] == false));
    }

    #[test]
    fn phones_named_cubot_are_people_and_crawlers_are_bots() {
        let cubot = "Mozilla/5.0 (Linux; Android 10; CUBOT X30) AppleWebKit/537.36 (KHTML, like Gecko) \
                     Chrome/131.0.0.0 Mobile Safari/537.36";
        assert!(!is_bot(cubot));
        assert!(is_bot(
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
        ));
        assert!(is_bot("") && is_bot("   "), "a missing user agent is not a browser");
    }

    /// Each translated lookaround refuses exactly what upstream's lookaround refuses.
    #[test]
    fn lookaround_translations_keep_their_exceptions() {
        let chrome = "mozilla/5.0 (linux; android 14) applewebkit/537.36 chrome/131.0.0.0 mobile safari/537.36";
        for (suffix, bot) in [
            (" googleapp/15.32", false),
            (" google/pixel", true),
            (" googlewv", false),
            (" newssapphire/5", false),
            (" news/5", true),
            (" gnews", false),
            (" camscanner", false),
            (" virusscan", true),
            (" java;", false),
            (" java/17", true),
            (" robot_x", true),
            (" cubots", false),
        ] {
            assert_eq!(is_bot(&format!("{chrome}{suffix}")), bot, "{suffix}");
        }
    }

    #[test]
    fn remembered_verdicts_belong_to_their_own_user_agent() {
        // Every user agent below shares slots with others; a verdict must never cross over.
        for round in 0..3 {
            for n in 0..(RECENT_SLOTS * 4) {
                let (ua, bot) = if n % 2 == 0 {
                    (
                        format!("Mozilla/5.0 (X11; Linux x86_64) Chrome/{n}.0 Safari/537.36"),
                        false,
                    )
                } else {
                    (format!("Mozilla/5.0 (compatible; Crawler{n}bot/1.0)"), true)
                };
                assert_eq!(is_bot(&ua), bot, "round {round}: {ua}");
            }
        }
        let long = format!(
            "Mozilla/5.0 {} Chrome/131.0 Safari/537.36",
            "x".repeat(RECENT_MAX_BYTES)
        );
        assert_eq!(is_bot(&long), classify(&long));
    }

    #[cfg(not(target_arch = "wasm32"))]
    proptest::proptest! {
        /// The first-byte index finds exactly what a search for each marker finds.
        #[test]
        fn substring_index_agrees_with_a_search_per_marker(
            before in "[a-z /;]{0,12}",
            marker in 0..SUBSTRINGS.len(),
            planted: bool,
            after in "[a-z /;]{0,12}",
        ) {
            let ua = if planted { format!("{before}{}{after}", SUBSTRINGS[marker]) } else { format!("{before}{after}") };
            let expected = SUBSTRINGS.iter().any(|m| ua.contains(m));
            proptest::prop_assert_eq!(contains_substring(ua.as_bytes()), expected);
        }
    }
}
