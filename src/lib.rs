//! Cohort's edge worker: I/O around `cohort-core`'s decisions.
//!
//! `src/entry.mjs` is the only fetch handler. It reads a request's facts and crosses into the Wasm
//! once through [`serve::handle`], which finds the tenant in the isolate's cache and returns what
//! [`cohort_core::edge::serve::serve`] decided: a page plan, an endpoint answer, or "pass it on
//! untouched". The entry carries that out (origin fetch, HTMLRewriter, headers) behind one
//! fail-open guard. The delivery queue's consumer is the [`delivery`] export, driven by
//! [`cohort_core::delivery::consumer`]. Everything here is I/O: KV reads ([`config_cache`]), queue
//! sends and collector POSTs ([`beacon`], [`delivery`]), and raw JS access ([`js`]).

mod beacon;
mod config_cache;
mod delivery;
mod heap;
mod js;
mod log;
mod serve;
mod settings;

pub(crate) fn now_ms() -> i64 {
    worker::Date::now().as_millis() as i64
}

/// Fresh random bytes from the platform (`crypto.getRandomValues`).
pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], String> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| format!("getrandom: {e}"))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use cohort_core::edge::serve::{TRACK_IP_LIMITER, TRACK_LIMIT_PERIOD_SECONDS, TRACK_UNIT_LIMITER};

    /// Every environment of wrangler.toml binds both track limiters by the names the engine asks
    /// for, counting over the period it tells refused visitors to wait.
    #[test]
    fn wrangler_binds_the_track_limiters_the_engine_names() {
        let config = include_str!("../wrangler.toml");
        for prefix in ["", "env.staging.", "env.production."] {
            for name in [TRACK_UNIT_LIMITER, TRACK_IP_LIMITER] {
                let header = format!("[[{prefix}ratelimits]]\nname = \"{name}\"\n");
                let at = config
                    .find(&header)
                    .unwrap_or_else(|| panic!("wrangler.toml lacks {header}"));
                let block = &config[at..];
                let simple = block.lines().find(|l| l.starts_with("simple")).unwrap_or_default();
                assert!(
                    simple.contains(&format!("period = {TRACK_LIMIT_PERIOD_SECONDS} ")),
                    "{prefix}{name}: {simple}"
                );
            }
        }
    }
}
