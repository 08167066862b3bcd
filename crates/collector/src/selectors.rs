//! CSS selectors checked with lol_html, the HTML rewriter workerd's `HTMLRewriter` is built on.
//!
//! The engine validates a selector's shape only (crates/core stays free of a CSS parser, and the
//! Wasm keeps its size); a selector the rewriter does not support (`:hover`, `a:has(b)`, a typo
//! in a pseudo-class) would otherwise be found at request time, where the edge serves that page
//! unedited. Everything that stores or publishes a config natively (the config API,
//! `--tenant-config`, `cohort validate` and `cohort publish`) runs this check too, so it refuses
//! what the edge would refuse.

use std::str::FromStr;

use cohort_core::config::Action;
use cohort_core::{ConfigError, ConfigErrorKind, TenantConfig};

/// The first selector of `config` that lol_html cannot parse, as a config error at its JSON path.
pub fn check_selectors(config: &TenantConfig) -> Result<(), ConfigError> {
    for (e, experiment) in config.experiments.iter().enumerate() {
        for (v, variant) in experiment.variants.iter().enumerate() {
            for (a, action) in variant.actions.iter().enumerate() {
                let selector = match action {
                    Action::SetText { selector, .. }
                    | Action::SetAttribute { selector, .. }
                    | Action::InsertHtml { selector, .. }
                    | Action::Remove { selector } => selector,
                    _ => continue,
                };
                if let Err(error) = lol_html::Selector::from_str(selector) {
                    return Err(ConfigError {
                        path: format!("experiments[{e}].variants[{v}].actions[{a}].selector"),
                        kind: ConfigErrorKind::Invalid(format!(
                            "selector `{selector}` is not supported by the edge's HTML rewriter: {error}"
                        )),
                    });
                }
            }
        }
    }
    Ok(())
}

/// Parses and validates a config document as the edge does, then checks its selectors.
pub fn validate_document(json: &str) -> Result<cohort_core::Tenant, ConfigError> {
    let tenant = cohort_core::Tenant::from_json(json)?;
    let config: TenantConfig = serde_json::from_str(json).map_err(|e| ConfigError {
        path: String::new(),
        kind: ConfigErrorKind::Syntax(e.to_string()),
    })?;
    check_selectors(&config)?;
    Ok(tenant)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_with(selector: &str) -> TenantConfig {
        serde_json::from_value(serde_json::json!({
            "schema": 1, "tenant": "shop", "version": 1, "hostnames": ["shop.example"],
            "hash_key": "000102030405060708090a0b0c0d0e0f",
            "experiments": [{"key": "hero", "status": "running", "variants": [
                {"key": "control", "weight": 5000},
                {"key": "bold", "weight": 5000, "actions": [
                    {"type": "request_header", "name": "x-variant", "value": "bold"},
                    {"type": "set_text", "selector": selector, "text": "Hi"}]}]}]
        }))
        .unwrap()
    }

    #[test]
    fn selectors_the_rewriter_supports_pass() {
        for selector in [
            "h1",
            "#hero > p.lead",
            "a[href^=\"/sale\"]",
            "ul li:nth-child(2n+1)",
            "div:not(.x)",
        ] {
            assert_eq!(check_selectors(&config_with(selector)), Ok(()), "{selector}");
        }
    }

    #[test]
    fn selectors_it_refuses_are_refused_at_their_path() {
        for selector in ["a:hover", "p::before", "div:has(p)", "h1:first-letter"] {
            let error = check_selectors(&config_with(selector)).unwrap_err();
            assert_eq!(
                error.path, "experiments[0].variants[1].actions[1].selector",
                "{selector}"
            );
            assert!(
                error.to_string().contains("not supported by the edge's HTML rewriter"),
                "{selector}: {error}"
            );
        }
    }
}
