//! Every way a config is rejected names the JSON path and the reason.

use cohort_core::Tenant;
use serde_json::{Value, json};

fn valid() -> Value {
    json!({
        "schema": 1, "tenant": "shop", "version": 3, "hostnames": ["shop.example"],
        "hash_key": "000102030405060708090a0b0c0d0e0f",
        "layers": [{"key": "checkout"}],
        "experiments": [
            {"key": "a", "status": "running", "layer": {"key": "checkout", "range": [0, 5000]},
             "variants": [{"key": "control", "weight": 5000}, {"key": "b", "weight": 5000}]},
            {"key": "b", "status": "running", "paths": ["/x/*"], "targeting": {"country": "DE"},
             "variants": [{"key": "control", "weight": 5000}, {"key": "b", "weight": 5000}]}
        ]
    })
}

/// Applies `edit` to a valid config and returns the error text, which must be the same whether
/// the config arrives as text (the edge's fast path) or as an already-parsed value.
fn error_after(edit: impl FnOnce(&mut Value)) -> String {
    let mut config = valid();
    edit(&mut config);
    let from_text = Tenant::from_json(&config.to_string())
        .expect_err("config text should be rejected")
        .to_string();
    let from_value = Tenant::from_value(config)
        .expect_err("config should be rejected")
        .to_string();
    assert_eq!(from_text, from_value, "the two ways in disagree");
    from_value
}

#[test]
fn text_the_direct_reader_refuses_still_reads_as_before() {
    // A repeated key: the direct reader refuses it, the value reader keeps the last one.
    let text = valid()
        .to_string()
        .replacen(r#""version":3"#, r#""version":2,"version":3"#, 1);
    assert!(text.contains(r#""version":2,"version":3"#));
    assert_eq!(Tenant::from_json(&text).expect("repeated key reads").version, 3);
    // Another schema is named as such, not as whatever else fails to read.
    let other = valid().to_string().replacen(r#""schema":1"#, r#""schema":2"#, 1);
    assert!(Tenant::from_json(&other).unwrap_err().to_string().starts_with("schema"));
}

#[track_caller]
fn assert_rejected(edit: impl FnOnce(&mut Value), expected: &str) {
    let message = error_after(edit);
    assert!(message.starts_with(expected), "expected `{expected}…`, got `{message}`");
}

#[test]
fn the_valid_base_config_compiles() {
    let tenant = Tenant::from_value(valid()).unwrap();
    assert_eq!(tenant.experiments.len(), 2);
}

#[test]
fn a_json_schema_reference_is_accepted_and_must_be_a_string() {
    let mut config = valid();
    config["$schema"] = json!("../../schemas/tenant-config.schema.json");
    assert_eq!(Tenant::from_value(config).unwrap().experiments.len(), 2);
    assert_rejected(
        |c| c["$schema"] = json!(1),
        "$schema: invalid type: integer `1`, expected a string",
    );
}

#[test]
fn weights_must_sum_to_10000() {
    assert_rejected(
        |c| c["experiments"][1]["variants"][1]["weight"] = json!(4900),
        "experiments[1].variants: weights sum to 9900, expected 10000",
    );
}

#[test]
fn duplicate_keys() {
    assert_rejected(
        |c| c["experiments"][1]["key"] = json!("a"),
        "experiments[1].key: duplicate key `a`",
    );
    assert_rejected(
        |c| c["experiments"][0]["variants"][1]["key"] = json!("control"),
        "experiments[0].variants[1].key: duplicate key `control`",
    );
    assert_rejected(
        |c| c["layers"] = json!([{"key": "checkout"}, {"key": "checkout"}]),
        "layers[1].key: duplicate key `checkout`",
    );
    assert_rejected(
        |c| c["hostnames"] = json!(["shop.example", "shop.example"]),
        "hostnames[1]: duplicate key `shop.example`",
    );
}

#[test]
fn layer_ranges_must_not_overlap() {
    assert_rejected(
        |c| c["experiments"][1]["layer"] = json!({"key": "checkout", "range": [4000, 10000]}),
        "experiments[1].layer.range: range overlaps experiment `a`, which owns [0, 5000) of the layer",
    );
    // A stopped experiment releases its range.
    let mut config = valid();
    config["experiments"][0]["status"] = json!("stopped");
    config["experiments"][1]["layer"] = json!({"key": "checkout", "range": [4000, 10000]});
    Tenant::from_value(config).unwrap();
    assert_rejected(
        |c| c["experiments"][1]["layer"] = json!({"key": "pricing", "range": [0, 10]}),
        "experiments[1].layer.key: layer `pricing` is not declared",
    );
    assert_rejected(
        |c| c["experiments"][0]["layer"]["range"] = json!([5000, 5000]),
        "experiments[0].layer.range: [5000, 5000) is empty",
    );
    assert_rejected(
        |c| c["experiments"][0]["layer"]["range"] = json!([0, 10001]),
        "experiments[0].layer.range[1]: 10001 is out of range",
    );
}

#[test]
fn unknown_fields_are_rejected_where_they_are() {
    assert_rejected(
        |c| c["holdut"] = json!(100),
        "holdut: unknown field `holdut`, expected one of",
    );
    assert_rejected(
        |c| c["experiments"][1]["variants"][0]["wieght"] = json!(1),
        "experiments[1].variants[0].wieght: unknown field `wieght`",
    );
    assert_rejected(
        |c| c["experiments"][0]["variants"][1]["actions"] = json!([{"type": "set_text", "selector": "h1", "txt": "x"}]),
        "experiments[0].variants[1].actions[0]: unknown field `txt`, expected `selector` or `text`",
    );
    assert_rejected(
        |c| c["experiments"][0]["status"] = json!("live"),
        "experiments[0].status: unknown variant `live`",
    );
    assert_rejected(
        |c| c["experiments"][0]["coverage"] = json!("all"),
        "experiments[0].coverage: invalid type",
    );
}

#[test]
fn schema_is_checked_first() {
    assert_rejected(
        |c| c["schema"] = json!(2),
        "schema: unsupported schema 2; this engine reads schema 1",
    );
    assert_rejected(
        |c| c.as_object_mut().unwrap().retain(|k, _| k != "schema"),
        "schema: missing field `schema`",
    );
    assert!(
        Tenant::from_json("[1, 2]")
            .unwrap_err()
            .to_string()
            .contains("a tenant config is a JSON object")
    );
    assert!(
        Tenant::from_json("{\"schema\": 1,")
            .unwrap_err()
            .to_string()
            .contains("EOF")
    );
}

#[test]
fn basis_points_stay_in_range() {
    assert_rejected(
        |c| c["experiments"][0]["coverage"] = json!(10001),
        "experiments[0].coverage: 10001 is out of range",
    );
    assert_rejected(|c| c["holdout"] = json!(20000), "holdout: 20000 is out of range");
    assert_rejected(
        |c| c["experiments"][0]["coverage"] = json!(-1),
        "experiments[0].coverage: invalid value",
    );
}

#[test]
fn patterns_and_conditions_compile_at_load() {
    assert_rejected(
        |c| c["experiments"][1]["paths"] = json!(["/ok", "/a/***"]),
        "experiments[1].paths[1]: invalid path pattern",
    );
    assert_rejected(
        |c| c["experiments"][1]["paths"] = json!(["~(unclosed"]),
        "experiments[1].paths[0]: invalid path pattern: regex",
    );
    assert_rejected(
        |c| c["experiments"][1]["paths"] = json!(["checkout"]),
        "experiments[1].paths[0]: invalid path pattern: `checkout` must start with `/`",
    );
    assert_rejected(
        |c| c["experiments"][1]["targeting"] = json!({"browser": {"$regex": "(Chrome"}}),
        "experiments[1].targeting.browser.$regex: invalid targeting condition",
    );
    assert_rejected(
        |c| c["experiments"][1]["targeting"] = json!({"$or": [{"a": 1}, {"b": {"$bogus": 2}}]}),
        "experiments[1].targeting.$or[1].b.$bogus: invalid targeting condition: unknown operator `$bogus`",
    );
}

#[test]
fn winners_and_schedules() {
    assert_rejected(
        |c| {
            c["experiments"][1]["status"] = json!("stopped");
            c["experiments"][1]["winner"] = json!("purple");
        },
        "experiments[1].winner: winner `purple` is not a variant of this experiment",
    );
    assert_rejected(
        |c| c["experiments"][1]["winner"] = json!("b"),
        "experiments[1].winner: a winner is only served once the experiment is `stopped`",
    );
    assert_rejected(
        |c| {
            c["experiments"][1]["start"] = json!("2026-12-01T00:00:00Z");
            c["experiments"][1]["end"] = json!("2026-11-01T00:00:00Z");
        },
        "experiments[1].end: end must be after start",
    );
    assert_rejected(
        |c| c["experiments"][1]["start"] = json!("next monday"),
        "experiments[1].start: `next monday` is not an RFC 3339 timestamp",
    );
}

#[test]
fn identities_and_keys() {
    assert_rejected(|c| c["hash_key"] = json!("abc"), "hash_key: expected 32 hex characters");
    assert_rejected(|c| c["tenant"] = json!("Shop Inc"), "tenant: `Shop Inc` contains 'S'");
    assert_rejected(
        |c| c["experiments"][0]["key"] = json!("a=b"),
        "experiments[0].key: `a=b` contains '='",
    );
    assert_rejected(
        |c| c["experiments"][0]["key"] = json!("x".repeat(65)),
        "experiments[0].key: a key has 1 to 64 characters",
    );
    assert_rejected(
        |c| c["hostnames"] = json!(["Shop.Example:443"]),
        "hostnames[0]: `Shop.Example:443`: give the hostname without a port",
    );
    assert_rejected(
        |c| c["hostnames"] = json!([]),
        "hostnames: a tenant serves at least one hostname",
    );
    assert_rejected(|c| c["version"] = json!(0), "version: version must be at least 1");
    assert_rejected(
        |c| c["experiments"][0]["variants"] = json!([{"key": "only", "weight": 10000}]),
        "experiments[0].variants: 1 variants; an experiment has 2 to 20",
    );
}

#[test]
fn actions_are_validated() {
    let with_action =
        |action: Value| move |c: &mut Value| c["experiments"][0]["variants"][1]["actions"] = json!([action]);
    assert_rejected(
        with_action(json!({"type": "route"})),
        "experiments[0].variants[1].actions[0]: a route needs a `path`, a `host`, or both",
    );
    assert_rejected(
        with_action(json!({"type": "route", "path": "no-slash"})),
        "experiments[0].variants[1].actions[0]: route path `no-slash` must start with `/`",
    );
    assert_rejected(
        with_action(json!({"type": "request_header", "name": "bad header", "value": "x"})),
        "experiments[0].variants[1].actions[0]: header name `bad header` is not an HTTP token",
    );
    assert_rejected(
        with_action(json!({"type": "remove", "selector": " "})),
        "experiments[0].variants[1].actions[0]: selector ` ` must be a non-empty CSS selector",
    );
    assert_rejected(
        with_action(json!({"type": "set_text", "selector": "h1[", "text": "x"})),
        "experiments[0].variants[1].actions[0]: selector `h1[`: `[` is never closed",
    );
    assert_rejected(
        with_action(json!({"type": "remove", "selector": "a[href='x]"})),
        "experiments[0].variants[1].actions[0]: selector `a[href='x]`: the quote ' is never closed",
    );
    assert_rejected(
        with_action(json!({"type": "remove", "selector": "li:nth-child(2))"})),
        "experiments[0].variants[1].actions[0]: selector `li:nth-child(2))`: `)` closes nothing",
    );
    assert_rejected(
        with_action(json!({"type": "remove", "selector": "main >"})),
        "experiments[0].variants[1].actions[0]: selector `main >`: ends with `>`",
    );
    assert_rejected(
        with_action(json!({"type": "teleport"})),
        "experiments[0].variants[1].actions[0].type: unknown variant `teleport`",
    );
}

#[test]
fn garbage_never_panics() {
    for text in [
        "",
        "null",
        "{}",
        "{\"schema\": 1}",
        "{\"schema\": \"1\"}",
        "{\"schema\": 1, \"experiments\": 5}",
        "\u{0}",
        "[[[[[[[[[[[[[[[[",
    ] {
        assert!(Tenant::from_json(text).is_err(), "{text:?}");
    }
}

#[test]
fn missing_fields_are_named_by_path() {
    assert_rejected(
        |c| c.as_object_mut().unwrap().remove("hash_key").map(drop).unwrap(),
        "hash_key: missing field `hash_key`",
    );
    assert_rejected(
        |c| {
            c["experiments"][0]
                .as_object_mut()
                .unwrap()
                .remove("status")
                .map(drop)
                .unwrap()
        },
        "experiments[0].status: missing field `status`",
    );
}

#[test]
fn reserved_headers_and_oversized_content_are_refused() {
    let with_action =
        |action: Value| move |c: &mut Value| c["experiments"][0]["variants"][1]["actions"] = json!([action]);
    assert_rejected(
        with_action(json!({"type": "request_header", "name": "Host", "value": "evil.example"})),
        "experiments[0].variants[1].actions[0]: header `Host` is reserved",
    );
    assert_rejected(
        with_action(json!({"type": "request_header", "name": "cohort-assignments", "value": "x"})),
        "experiments[0].variants[1].actions[0]: header `cohort-assignments` is reserved",
    );
    assert_rejected(
        with_action(json!({"type": "set_text", "selector": "h1", "text": "x".repeat(20_000)})),
        "experiments[0].variants[1].actions[0]: content is 20000 bytes",
    );
}

#[test]
fn selectors_with_brackets_quotes_and_combinators_are_accepted() {
    for selector in [
        "h1.title",
        "main > article p + p ~ aside",
        "a[href=\"/cart]\"]",
        "[data-note='it\\'s']",
        "li:nth-child(2n+1), li:first-child",
        "input[type=checkbox]:not([disabled])",
    ] {
        let mut config = valid();
        config["experiments"][0]["variants"][1]["actions"] = json!([{"type": "remove", "selector": selector}]);
        if let Err(error) = Tenant::from_value(config) {
            panic!("`{selector}` was refused: {error}");
        }
    }
}

#[test]
fn a_unit_id_header_must_be_a_header_name_that_does_not_decide_identity() {
    let mut config = valid();
    config["edge"] = json!({"unit_id_header": "X-Customer-Id"});
    assert!(Tenant::from_value(config).is_ok());
    assert_rejected(
        |c| c["edge"] = json!({"unit_id_header": "X Customer"}),
        "edge.unit_id_header: header name `X Customer` is not an HTTP token",
    );
    assert_rejected(
        |c| c["edge"] = json!({"unit_id_header": "Authorization"}),
        "edge.unit_id_header: header `Authorization` is reserved: it controls routing, framing or identity",
    );
}

#[test]
fn a_unit_id_cookie_must_be_a_cookie_name_other_than_cohorts_own() {
    let mut config = valid();
    config["edge"] = json!({"unit_id_cookie": "gbuuid"});
    assert!(Tenant::from_value(config).is_ok());
    assert_rejected(
        |c| c["edge"] = json!({"unit_id_cookie": "gb uuid"}),
        "edge.unit_id_cookie: `gb uuid` is not a cookie name",
    );
    assert_rejected(
        |c| c["edge"] = json!({"unit_id_cookie": "__Host-cohort"}),
        "edge.unit_id_cookie: `__Host-cohort` is Cohort's own cookie",
    );
    assert_rejected(
        |c| c["edge"] = json!({"opt_out_cookie": "cohort"}),
        "edge.opt_out_cookie: `cohort` is Cohort's own cookie",
    );
}
