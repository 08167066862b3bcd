//! The sticky-cookie parser behind the MAC, branch by branch. Each case lays out a format-1 body by
//! the layout documented in `cookie.rs`, malformed in one way (or not at all), and signs it with the
//! tenant's real cookie key, so the MAC verifies and the parser itself decides. Every case must be
//! refused with its own error, or accepted where the format allows it, and never panic; the run
//! must reach every case and every error the decoder can return, so a removed check shows up as a
//! case that is accepted (or refused for another reason) and fails.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test
#![cfg(not(target_arch = "wasm32"))]

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use cohort_core::cookie::{FORMAT, MAX_ASSIGNMENTS, MAX_FUTURE_SKEW_SECS, MAX_UNIT_ID_LEN, MAX_VALUE_LEN, seal};
use cohort_core::edge::COOKIE_MAX_AGE_SECONDS;
use cohort_core::encoding::{base64url_encode, hex_encode};
use cohort_core::secrets::{CookieKey, MasterSecret};
use cohort_core::{CookieError, StickyCookie, StickyEntry};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestError, TestRunner};

const NOW: i64 = 1_800_000_000;
const SECRET: &str = "cookie-parser-test-secret-of-32-bytes-or-more";
const EXPOSED_BIT: u8 = 0x80;

fn tenant_key(tenant: &str) -> CookieKey {
    MasterSecret::new(SECRET).unwrap().cookie_key(tenant)
}

/// Minimal LEB128, as the layout specifies.
fn varint(mut value: u64) -> Vec<u8> {
    let mut out = Vec::new();
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
    out
}

/// A format-1 body, field by field, so a case can spoil exactly one of them.
#[derive(Debug, Clone)]
struct Layout {
    format: u8,
    unit: Vec<u8>,
    config_version: Vec<u8>,
    issued_at: Vec<u8>,
    count: u8,
    entries: Vec<u8>,
    trailing: Vec<u8>,
}

impl Layout {
    fn body(&self) -> Vec<u8> {
        let mut body = vec![self.format];
        for field in [&self.unit, &self.config_version, &self.issued_at] {
            body.extend_from_slice(field);
        }
        body.push(self.count);
        body.extend_from_slice(&self.entries);
        body.extend_from_slice(&self.trailing);
        body
    }
}

/// A well-formed cookie and its layout.
#[derive(Debug, Clone)]
struct WellFormed {
    cookie: StickyCookie,
    layout: Layout,
}

fn unit_field() -> impl Strategy<Value = (String, Vec<u8>)> {
    let is_hex_id =
        |text: &String| text.len() == 32 && text.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    prop_oneof![
        any::<[u8; 16]>().prop_map(|raw| {
            let mut field = vec![0];
            field.extend_from_slice(&raw);
            (hex_encode(&raw), field)
        }),
        prop_oneof!["[a-zA-Z0-9@._~-]{1,64}", "\\PC{1,16}"]
            .prop_filter("a lowercase hex id is stored raw", move |text| !is_hex_id(text))
            .prop_map(|text| {
                let mut field = vec![1, text.len() as u8];
                field.extend_from_slice(text.as_bytes());
                (text, field)
            }),
    ]
}

/// Well-formed cookies with `sizes` assignments issued at `issued`.
fn well_formed(
    sizes: impl Strategy<Value = usize> + 'static,
    issued: impl Strategy<Value = i64> + 'static,
) -> BoxedStrategy<WellFormed> {
    let entries = sizes
        .prop_flat_map(|n| prop::collection::btree_map(any::<u32>(), (0u8..128, any::<bool>()), n))
        .prop_map(|map| map.into_iter().collect::<Vec<_>>())
        .prop_shuffle();
    (unit_field(), any::<u64>(), issued, entries)
        .prop_map(|((unit_id, unit), config_version, issued_at, entries)| {
            let mut entry_bytes = Vec::new();
            for &(id, (variant, exposed)) in &entries {
                entry_bytes.extend_from_slice(&id.to_le_bytes());
                entry_bytes.push(variant | if exposed { EXPOSED_BIT } else { 0 });
            }
            WellFormed {
                layout: Layout {
                    format: FORMAT,
                    unit,
                    config_version: varint(config_version),
                    issued_at: varint(issued_at as u64),
                    count: entries.len() as u8,
                    entries: entry_bytes,
                    trailing: Vec::new(),
                },
                cookie: StickyCookie {
                    unit_id,
                    config_version,
                    issued_at,
                    assignments: entries
                        .into_iter()
                        .map(|(experiment_id, (variant, exposed))| StickyEntry {
                            experiment_id,
                            variant,
                            exposed,
                        })
                        .collect(),
                },
            }
        })
        .boxed()
}

fn any_well_formed() -> BoxedStrategy<WellFormed> {
    well_formed(
        0..=MAX_ASSIGNMENTS,
        (NOW - COOKIE_MAX_AGE_SECONDS)..=(NOW + MAX_FUTURE_SKEW_SECS),
    )
}

/// A well-formed cookie to spoil: short enough that no malformation makes it oversized.
fn base() -> BoxedStrategy<WellFormed> {
    well_formed(
        0..=32usize,
        (NOW - COOKIE_MAX_AGE_SECONDS)..=(NOW + MAX_FUTURE_SKEW_SECS),
    )
}

/// One cookie value and what the decoder must answer for tenant `shop` at [`NOW`].
#[derive(Debug, Clone)]
struct Case {
    name: &'static str,
    value: String,
    expected: Result<StickyCookie, CookieError>,
}

fn signed(name: &'static str, layout: &Layout, expected: Result<StickyCookie, CookieError>) -> Case {
    Case {
        name,
        value: seal(&tenant_key("shop"), layout.body()),
        expected,
    }
}

fn malformed(name: &'static str, layout: &Layout, what: &'static str) -> Case {
    signed(name, layout, Err(CookieError::Malformed(what)))
}

/// Replaces the config version or the issue time (the two varints) with `bytes`.
fn with_varint(mut layout: Layout, in_issue_time: bool, bytes: Vec<u8>) -> Layout {
    if in_issue_time {
        layout.issued_at = bytes;
    } else {
        layout.config_version = bytes;
    }
    layout
}

/// Nine continuation bytes: a varint that has reached bit 63 and still goes on.
fn nine_continuations() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>().prop_map(|b| b | 0x80), 9)
}

fn cases() -> impl Strategy<Value = Case> {
    let accepted = |name: &'static str, strategy: BoxedStrategy<WellFormed>| {
        strategy.prop_map(move |w| signed(name, &w.layout, Ok(w.cookie)))
    };
    let max_age = NOW - COOKIE_MAX_AGE_SECONDS;
    let skew_limit = NOW + MAX_FUTURE_SKEW_SECS;
    prop_oneof![
        accepted("accepted", any_well_formed()),
        accepted(
            "accepted with no assignments",
            well_formed(Just(0), max_age..=skew_limit)
        ),
        accepted(
            "accepted with the most assignments",
            well_formed(Just(MAX_ASSIGNMENTS), max_age..=skew_limit)
        ),
        accepted(
            "accepted at the future-skew limit",
            well_formed(0..8usize, Just(skew_limit))
        ),
        accepted("accepted at the maximum age", well_formed(0..8usize, Just(max_age))),
        // Any strict prefix of a body (the format byte kept) runs out inside some field.
        (base(), any::<prop::sample::Index>()).prop_map(|(w, cut)| {
            let body = w.layout.body();
            let cut = 1 + cut.index(body.len() - 1);
            Case {
                name: "body cut short",
                value: seal(&tenant_key("shop"), body[..cut].to_vec()),
                expected: Err(CookieError::Truncated),
            }
        }),
        // Fewer bytes than a format byte and a MAC: refused before any MAC is computed.
        prop::collection::vec(any::<u8>(), 0..9).prop_map(|raw| Case {
            name: "shorter than a MAC",
            value: base64url_encode(&raw),
            expected: Err(CookieError::Truncated),
        }),
        (
            base(),
            any::<bool>(),
            prop::collection::vec(any::<u8>().prop_map(|b| b | 0x80), 1..=9)
        )
            .prop_map(|(w, in_issue_time, open)| {
                let mut layout = with_varint(w.layout, in_issue_time, open);
                if !in_issue_time {
                    layout.issued_at.clear();
                }
                layout.count = 0;
                layout.entries.clear();
                // The body ends inside the varint: the count byte must not follow it.
                let mut body = layout.body();
                body.pop();
                Case {
                    name: "varint cut short",
                    value: seal(&tenant_key("shop"), body),
                    expected: Err(CookieError::Truncated),
                }
            }),
        (base(), any::<bool>(), 0u64..(1 << 56), 1usize..=9).prop_map(|(w, in_issue_time, value, pad)| {
            let mut bytes = varint(value);
            let pad = pad.min(10 - bytes.len());
            *bytes.last_mut().unwrap() |= 0x80;
            bytes.extend(std::iter::repeat_n(0x80, pad - 1));
            bytes.push(0);
            malformed(
                "non-minimal varint",
                &with_varint(w.layout, in_issue_time, bytes),
                "non-minimal varint",
            )
        }),
        (base(), any::<bool>(), nine_continuations(), 2u8..=0xff)
            .prop_filter("bits above 64", |(.., last)| last & 0x7f > 1)
            .prop_map(|(w, in_issue_time, mut bytes, last)| {
                bytes.push(last);
                malformed(
                    "varint over 64 bits",
                    &with_varint(w.layout, in_issue_time, bytes),
                    "varint overflows 64 bits",
                )
            }),
        (
            base(),
            any::<bool>(),
            nine_continuations(),
            prop_oneof![Just(0x80u8), Just(0x81u8)]
        )
            .prop_map(|(w, in_issue_time, mut bytes, last)| {
                bytes.push(last);
                let layout = with_varint(w.layout, in_issue_time, bytes);
                malformed("varint over 10 bytes", &layout, "varint longer than 10 bytes")
            }),
        (base(), (1u64 << 63)..=u64::MAX).prop_map(|(w, issued_at)| {
            let layout = with_varint(w.layout, true, varint(issued_at));
            malformed("issue time beyond i64", &layout, "issue time")
        }),
        (base(), prop_oneof![Just(1i64), 1i64..=10 * COOKIE_MAX_AGE_SECONDS]).prop_map(|(w, beyond)| {
            let layout = with_varint(w.layout, true, varint((NOW + MAX_FUTURE_SKEW_SECS + beyond) as u64));
            malformed("issued beyond the future skew", &layout, "issued in the future")
        }),
        (base(), prop_oneof![Just(max_age - 1), 0..max_age]).prop_map(|(w, issued_at)| {
            let layout = with_varint(w.layout, true, varint(issued_at as u64));
            signed(
                "stale",
                &layout,
                Err(CookieError::Stale {
                    age_seconds: NOW - issued_at,
                }),
            )
        }),
        (base(), (MAX_ASSIGNMENTS as u8 + 1)..=u8::MAX).prop_map(|(w, count)| {
            malformed(
                "count over the limit",
                &Layout { count, ..w.layout },
                "too many assignments",
            )
        }),
        (base(), 1usize..=8).prop_map(|(w, missing)| {
            let count = (w.layout.count as usize + missing).min(MAX_ASSIGNMENTS) as u8;
            signed(
                "count over the entries present",
                &Layout { count, ..w.layout },
                Err(CookieError::Truncated),
            )
        }),
        (
            well_formed(1..=32usize, max_age..=skew_limit),
            any::<prop::sample::Index>(),
            any::<prop::sample::Index>(),
            any::<u8>()
        )
            .prop_map(|(w, original, position, packed)| {
                let mut layout = w.layout;
                let entries = usize::from(layout.count);
                let original = original.index(entries);
                // The repeat goes anywhere after the entry it repeats.
                let at = original + 1 + position.index(entries - original);
                let mut repeat = layout.entries[original * 5..original * 5 + 4].to_vec();
                repeat.push(packed);
                layout.entries.splice(at * 5..at * 5, repeat);
                layout.count += 1;
                malformed("experiment repeated", &layout, "an experiment appears twice")
            }),
        (base(), prop::collection::vec(any::<u8>(), 1..16)).prop_map(|(w, trailing)| {
            malformed("trailing bytes", &Layout { trailing, ..w.layout }, "trailing bytes")
        }),
        (base(), any::<u8>().prop_filter("another format", |f| *f != FORMAT)).prop_map(|(w, format)| {
            signed(
                "another format",
                &Layout { format, ..w.layout },
                Err(CookieError::UnsupportedFormat(format)),
            )
        }),
        (base(), 2u8..=u8::MAX, prop::collection::vec(any::<u8>(), 0..20)).prop_map(|(w, kind, rest)| {
            let mut unit = vec![kind];
            unit.extend(rest);
            malformed(
                "unknown unit id kind",
                &Layout { unit, ..w.layout },
                "unknown unit id kind",
            )
        }),
        (base(), prop_oneof![Just(0u8), (MAX_UNIT_ID_LEN as u8 + 1)..=u8::MAX]).prop_map(|(w, len)| {
            let mut unit = vec![1, len];
            unit.extend(std::iter::repeat_n(b'u', usize::from(len)));
            malformed("unit id length", &Layout { unit, ..w.layout }, "unit id length")
        }),
        (base(), "[a-z]{1,63}", any::<prop::sample::Index>(), 0x80u8..=0xff).prop_map(|(w, text, position, stray)| {
            // A lone byte of 0x80 or more is never UTF-8 between ASCII letters.
            let mut bytes = text.into_bytes();
            bytes.insert(position.index(bytes.len() + 1), stray);
            let mut unit = vec![1, bytes.len() as u8];
            unit.extend(bytes);
            malformed(
                "unit id not UTF-8",
                &Layout { unit, ..w.layout },
                "unit id is not UTF-8",
            )
        }),
        (base(), any::<[u8; 16]>()).prop_map(|(w, raw)| {
            let mut unit = vec![1, 32];
            unit.extend(hex_encode(&raw).into_bytes());
            malformed(
                "hex unit id as text",
                &Layout { unit, ..w.layout },
                "hex unit id stored as text",
            )
        }),
        // Another tenant's cookie: the same layout under that tenant's own derived key.
        base().prop_map(|w| Case {
            name: "another tenant's key",
            value: seal(&tenant_key("news"), w.layout.body()),
            expected: Err(CookieError::BadMac),
        }),
        (base(), any::<prop::sample::Index>(), 1u8..=u8::MAX).prop_map(|(w, byte, flip)| {
            let mut raw = cohort_core::encoding::base64url_decode(&seal(&tenant_key("shop"), w.layout.body())).unwrap();
            let at = raw.len() - 8 + byte.index(8);
            raw[at] ^= flip;
            Case {
                name: "forged MAC",
                value: base64url_encode(&raw),
                expected: Err(CookieError::BadMac),
            }
        }),
        (base(), 0usize..64).prop_map(|(w, extra)| {
            // Padded with trailing bytes to just over the longest value accepted.
            let mut layout = w.layout;
            let bytes_over_the_limit = MAX_VALUE_LEN * 3 / 4 + 1 + extra;
            layout.trailing = vec![0; bytes_over_the_limit.saturating_sub(layout.body().len() + 8)];
            let value = seal(&tenant_key("shop"), layout.body());
            Case {
                name: "oversized",
                expected: Err(CookieError::Oversized { len: value.len() }),
                value,
            }
        }),
        (
            base(),
            any::<prop::sample::Index>(),
            prop::sample::select(vec!["=", "+", "/", ".", " ", "é"])
        )
            .prop_map(|(w, position, stray)| {
                let mut value = seal(&tenant_key("shop"), w.layout.body());
                let at = position.index(value.len());
                value.replace_range(at..at + 1, stray);
                Case {
                    name: "not base64url",
                    value,
                    expected: Err(CookieError::NotBase64),
                }
            }),
    ]
}

fn outcome(result: &Result<StickyCookie, CookieError>) -> String {
    match result {
        Ok(_) => "accepted".into(),
        Err(CookieError::Malformed(what)) => format!("malformed: {what}"),
        Err(CookieError::Stale { .. }) => "stale".into(),
        Err(CookieError::Oversized { .. }) => "oversized".into(),
        Err(CookieError::UnsupportedFormat(_)) => "unsupported format".into(),
        Err(other) => format!("{other:?}"),
    }
}

const CASES: u32 = 3000;

/// The names of the cases [`cases`] generates, every one of which a run must reach.
const CASE_NAMES: [&str; 27] = [
    "accepted",
    "accepted with no assignments",
    "accepted with the most assignments",
    "accepted at the future-skew limit",
    "accepted at the maximum age",
    "body cut short",
    "shorter than a MAC",
    "varint cut short",
    "non-minimal varint",
    "varint over 64 bits",
    "varint over 10 bytes",
    "issue time beyond i64",
    "issued beyond the future skew",
    "stale",
    "count over the limit",
    "count over the entries present",
    "experiment repeated",
    "trailing bytes",
    "another format",
    "unknown unit id kind",
    "unit id length",
    "unit id not UTF-8",
    "hex unit id as text",
    "another tenant's key",
    "forged MAC",
    "oversized",
    "not base64url",
];

#[test]
fn every_parser_branch_refuses_its_malformation_and_none_panics() {
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        source_file: Some(file!()),
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..Config::default()
    });
    let seen_cases = RefCell::new(BTreeSet::new());
    let seen_outcomes = RefCell::new(BTreeMap::<String, u32>::new());
    let result = runner.run(&cases(), |case| {
        let decoded = StickyCookie::decode(&case.value, &tenant_key("shop"), NOW, COOKIE_MAX_AGE_SECONDS);
        prop_assert_eq!(&decoded, &case.expected, "case `{}`: {}", case.name, case.value);
        if let Ok(cookie) = &decoded {
            prop_assert_eq!(
                cookie.encode(&tenant_key("shop")),
                case.value,
                "one encoding per cookie"
            );
        }
        seen_cases.borrow_mut().insert(case.name);
        *seen_outcomes.borrow_mut().entry(outcome(&decoded)).or_default() += 1;
        Ok(())
    });
    if let Err(error) = result {
        match error {
            TestError::Fail(reason, case) => panic!("{reason}\nminimal failing case: {case:#?}"),
            TestError::Abort(reason) => panic!("aborted: {reason}"),
        }
    }

    // Every case was generated, so every branch was tried at least once.
    let all_cases: BTreeSet<&str> = CASE_NAMES.into_iter().collect();
    assert_eq!(*seen_cases.borrow(), all_cases, "cases generated");
    let expected_outcomes: BTreeSet<String> = [
        "accepted",
        "malformed: an experiment appears twice",
        "malformed: hex unit id stored as text",
        "malformed: issue time",
        "malformed: issued in the future",
        "malformed: non-minimal varint",
        "malformed: too many assignments",
        "malformed: trailing bytes",
        "malformed: unit id is not UTF-8",
        "malformed: unit id length",
        "malformed: unknown unit id kind",
        "malformed: varint longer than 10 bytes",
        "malformed: varint overflows 64 bits",
        "oversized",
        "stale",
        "unsupported format",
        "BadMac",
        "NotBase64",
        "Truncated",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    let seen: BTreeSet<String> = seen_outcomes.borrow().keys().cloned().collect();
    assert_eq!(seen, expected_outcomes, "outcomes seen: {:?}", seen_outcomes.borrow());
}
