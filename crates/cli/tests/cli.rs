//! The `cohort` binary as users run it: exit codes, messages naming file and JSON path, stdin.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn cohort(args: &[&str], stdin: Option<&str>) -> Output {
    cohort_with_env(args, stdin, &[])
}

fn cohort_with_env(args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cohort"))
        .args(args)
        .env_remove("COHORT_SECRET")
        .envs(env.iter().copied())
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cohort runs");
    let mut pipe = child.stdin.take().unwrap();
    pipe.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(pipe);
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn validate_accepts_the_examples() {
    let out = cohort(
        &["validate", "examples/tenants/shop.json", "examples/tenants/news.json"],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("examples/tenants/shop.json: ok (tenant `shop`, version 14"));
}

#[test]
fn validate_names_file_path_and_reason_and_exits_1() {
    let dir = std::env::temp_dir().join(format!("cohort-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let broken = dir.join("broken.json");
    let shop =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/tenants/shop.json")).unwrap();
    std::fs::write(&broken, shop.replacen("\"weight\": 5000}", "\"weight\": 4000}", 1)).unwrap();
    let out = cohort(
        &["validate", "examples/tenants/news.json", broken.to_str().unwrap()],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{}: experiments[0].variants: weights sum to 9000, expected 10000",
            broken.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("1 of 2 files invalid"), "{stderr}");
    let missing = cohort(&["validate", "no/such/file.json"], None);
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing.stderr).contains("no/such/file.json"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn validate_reads_stdin_and_reports_json() {
    let shop =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/tenants/shop.json")).unwrap();
    let broken = shop.replacen("\"weight\": 5000}", "\"weight\": 4000}", 1);
    let out = cohort(
        &["validate", "--json", "examples/tenants/news.json", "-"],
        Some(&broken),
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stderr), "", "--json says everything on stdout");
    let report: serde_json::Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    assert_eq!(
        report,
        serde_json::json!([
            {"file": "examples/tenants/news.json", "ok": true, "tenant": "news",
             "version": report[0]["version"], "experiments": report[0]["experiments"]},
            {"file": "-", "ok": false, "error": {"path": "experiments[0].variants",
             "message": "experiments[0].variants: weights sum to 9000, expected 10000"}}
        ])
    );
    assert!(report[0]["experiments"].as_u64().unwrap() > 0);
    let from_stdin = cohort(&["validate", "-"], Some(&shop));
    assert!(from_stdin.status.success(), "{}", text(&from_stdin.stderr));
    assert!(text(&from_stdin.stdout).starts_with("-: ok (tenant `shop`"));
    // The edge's HTML rewriter (lol_html) refuses `:hover`; validate says so before publishing.
    let hover = shop.replacen("\"selector\": \"", "\"selector\": \"a:hover, ", 1);
    assert_ne!(hover, shop, "shop.json has a selector to break");
    let refused = cohort(&["validate", "-"], Some(&hover));
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused.stderr).contains("is not supported by the edge's HTML rewriter"),
        "{}",
        text(&refused.stderr)
    );
    let twice = cohort(&["validate", "-", "-"], None);
    assert!(text(&twice.stderr).contains("`-` (stdin) can be given once"));
}

/// The committed schema is what the code generates: a config type changed without regenerating it
/// (`cargo run -p cohort-cli -- schema > schemas/tenant-config.schema.json`) fails here. Ajv checks
/// the examples against it in tests/tooling/schema.test.mjs.
#[test]
fn the_committed_json_schema_matches_the_config_types() {
    let printed = cohort(&["schema"], None);
    assert!(printed.status.success(), "{}", text(&printed.stderr));
    let committed = include_str!("../../../schemas/tenant-config.schema.json");
    assert!(
        text(&printed.stdout) == committed,
        "schemas/tenant-config.schema.json is stale: regenerate it with `cohort schema`"
    );
    let schema: serde_json::Value = serde_json::from_str(committed).expect("the schema is JSON");
    let properties = schema["properties"].as_object().expect("top-level properties");
    for field in [
        "$schema",
        "schema",
        "tenant",
        "version",
        "hostnames",
        "hash_key",
        "experiments",
    ] {
        assert!(properties.contains_key(field), "the schema lacks `{field}`");
    }
}

/// The committed OpenAPI description is what the collector's route table and types generate
/// (`cargo run -p cohort-cli -- openapi > schemas/collector-openapi.json`). An independent
/// validator checks it, and real answers against it, in tests/tooling/openapi.test.mjs.
#[test]
fn the_committed_openapi_description_matches_the_collector() {
    let printed = cohort(&["openapi"], None);
    assert!(printed.status.success(), "{}", text(&printed.stderr));
    let committed = include_str!("../../../schemas/collector-openapi.json");
    assert!(
        text(&printed.stdout) == committed,
        "schemas/collector-openapi.json is stale: regenerate it with `cohort openapi`"
    );
}

#[test]
fn completions_and_the_manual_page_cover_every_subcommand() {
    let bash = cohort(&["completions", "bash"], None);
    assert!(bash.status.success());
    let man = cohort(&["man"], None);
    assert!(man.status.success());
    let (bash, man) = (text(&bash.stdout), text(&man.stdout));
    assert!(
        man.starts_with(".ie \\n(.g .ds Aq"),
        "roff: {}",
        &man[..man.len().min(80)]
    );
    for subcommand in ["validate", "explain", "results", "publish", "collector", "token"] {
        assert!(bash.contains(subcommand), "bash completion lacks {subcommand}");
        assert!(man.contains(subcommand), "man page lacks {subcommand}");
    }
    assert!(!cohort(&["completions", "tcsh"], None).status.success());
}

#[test]
fn explain_shows_variants_and_reasons() {
    let args = [
        "explain",
        "--config",
        "examples/tenants/shop.json",
        "--unit",
        "3f9a1c0e5b7d4a2c8e6f0b1d2c3a4e5f",
        "--url",
        "https://shop.example/checkout/payment",
        "--attr",
        "country=DE",
        "--now",
        "2026-12-01T12:00:00Z",
    ];
    let out = cohort(&args, None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("hero-banner          – path not matched"), "{stdout}");
    assert!(
        stdout.contains("checkout-flow        – layer `checkout` bucket"),
        "{stdout}"
    );
    // Past the holdout (a layer decided), so its holdout record says `rest`.
    assert!(
        stdout.contains("_holdout             → rest (bucket ")
            && stdout.contains(" ≥ 500, recorded when the unit is new)"),
        "{stdout}"
    );
    let news = cohort(
        &["explain", "--config", "examples/tenants/news.json", "--unit", "u1"],
        None,
    );
    assert!(!text(&news.stdout).contains("_holdout"), "news has no holdout");

    let mut json_args = args.to_vec();
    json_args.push("--json");
    let decisions: serde_json::Value = serde_json::from_slice(&cohort(&json_args, None).stdout).unwrap();
    assert_eq!(decisions.as_array().unwrap().len(), 7);
    assert_eq!(
        decisions[0],
        serde_json::json!({"experiment": "hero-banner", "reason": "path_not_matched"})
    );
}

#[test]
fn explain_rejects_bad_arguments_clearly() {
    let base = ["explain", "--config", "examples/tenants/shop.json", "--unit", "u1"];
    let bad_force = cohort(&[&base[..], &["--force", "nope=x"]].concat(), None);
    assert_eq!(bad_force.status.code(), Some(1));
    assert!(text(&bad_force.stderr).contains("--force `nope=x`: tenant `shop` has no experiment `nope`"));
    let bad_attr = cohort(&[&base[..], &["--attr", "country"]].concat(), None);
    assert!(text(&bad_attr.stderr).contains("--attr `country`: expected KEY=VALUE"));
    let bad_now = cohort(&[&base[..], &["--now", "tomorrow"]].concat(), None);
    assert!(text(&bad_now.stderr).contains("--now: `tomorrow` is not an RFC 3339 timestamp"));
    let bad_url = cohort(&[&base[..], &["--url", "checkout"]].concat(), None);
    assert!(text(&bad_url.stderr).contains("--url `checkout`"));
}

#[test]
fn match_answers_one_line_per_input() {
    let input = concat!(
        r#"{"condition": {"country": {"$in": ["DE", "AT"]}}, "attributes": {"country": "DE"}}"#,
        "\n",
        r#"{"condition": {"age": {"$gte": 18}}, "attributes": {"age": 17}}"#,
        "\n",
        "\n",
        r#"{"condition": {"browser": {"$regex": "(Chrome"}}, "attributes": {}}"#,
        "\n",
        "not json\n",
        r#"{"condition": {"app": {"$vgt": "2.1.0"}}, "attributes": {"app": "2.10.0"}}"#,
        "\n",
    );
    let out = cohort(&["match"], Some(input));
    // Every line is answered, and the two errors make the exit status 1.
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stderr).trim(), "match: 2 of 5 lines could not be evaluated");
    let lines: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 5, "{lines:?}");
    assert_eq!(lines[0], "true");
    assert_eq!(lines[1], "false");
    assert!(
        lines[2].starts_with("error: condition.browser.$regex: invalid regex"),
        "{}",
        lines[2]
    );
    assert!(lines[3].starts_with("error: line is not JSON"));
    assert_eq!(lines[4], "true");
}

#[test]
fn match_agrees_with_the_condition_vectors() {
    use cohort_vectors::ConditionExpectation;

    let cases = cohort_vectors::conditions().cases;
    let input: String = cases
        .iter()
        .map(|case| serde_json::json!({"condition": case.condition, "attributes": case.attributes}).to_string() + "\n")
        .collect();
    let out = cohort(&["match"], Some(&input));
    let rejected = cases
        .iter()
        .filter(|case| matches!(case.expected, ConditionExpectation::Rejected { .. }))
        .count();
    assert_eq!(out.status.success(), rejected == 0, "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), cases.len());
    for (case, line) in cases.iter().zip(lines) {
        match &case.expected {
            ConditionExpectation::Rejected { error_contains } => assert!(
                line.starts_with("error: ") && line.contains(error_contains.as_str()),
                "{}: {line}",
                case.name
            ),
            ConditionExpectation::Evaluates { matches, .. } => assert_eq!(line, matches.to_string(), "{}", case.name),
        }
    }
}

const SECRET: &str = "cli-test-platform-secret-0123456789abcdef";

#[test]
fn simulate_reports_splits_that_match_the_weights() {
    let out = cohort(
        &[
            "simulate",
            "--config",
            "examples/tenants/shop.json",
            "--units",
            "20000",
            "--url",
            "https://shop.example/",
            "--now",
            "2026-12-01T12:00:00Z",
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let hero = stdout.split("\nhero-banner").nth(1).expect("hero-banner section");
    assert!(hero.contains("units in (95."), "5% holdout: {hero}");
    assert!(
        hero.lines()
            .any(|l| l.trim_start().starts_with("control") && l.contains("(expected  50.00%)"))
    );
    assert!(hero.contains(": ok"), "{hero}");
    assert!(stdout.contains("search-ranking-v2  0 units in"), "{stdout}");
    let args = [
        "simulate",
        "--config",
        "examples/tenants/shop.json",
        "--units",
        "20000",
        "--url",
        "https://shop.example/",
        "--now",
        "2026-12-01T12:00:00Z",
        "--json",
    ];
    let json = cohort(&args, None);
    assert!(json.status.success(), "{}", text(&json.stderr));
    let report: serde_json::Value = serde_json::from_str(&text(&json.stdout)).unwrap();
    let experiments = report["experiments"].as_array().unwrap();
    let hero = experiments.iter().find(|e| e["experiment"] == "hero-banner").unwrap();
    assert_eq!(hero["variants"][0]["variant"], "control");
    assert_eq!(hero["variants"][0]["expected_share"], 0.5);
    assert_eq!(hero["sample_ratio"]["mismatch"], false);
    let units: u64 = hero["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["units"].as_u64().unwrap())
        .sum();
    assert_eq!(units, hero["assigned"].as_u64().unwrap());
    // The text report and the JSON count the same units.
    assert!(stdout.contains(&format!("hero-banner  {units} units in")), "{stdout}");
    let bad = cohort(
        &["simulate", "--config", "examples/tenants/shop.json", "--units", "0"],
        None,
    );
    assert_eq!(bad.status.code(), Some(2), "clap rejects 0 units");
}

#[test]
fn token_needs_the_secret_and_differs_by_tenant() {
    let missing = cohort(&["token", "--tenant", "shop"], None);
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("COHORT_SECRET") || text(&missing.stderr).contains("--secret"));
    let shop = cohort_with_env(&["token", "--tenant", "shop"], None, &[("COHORT_SECRET", SECRET)]);
    let news = cohort_with_env(&["token", "--tenant", "news"], None, &[("COHORT_SECRET", SECRET)]);
    assert!(shop.status.success());
    let secret = cohort_core::MasterSecret::new(SECRET).unwrap();
    assert_eq!(text(&shop.stdout).trim(), secret.results_read_token("shop"));
    assert_ne!(text(&shop.stdout), text(&news.stdout));
    let short = cohort_with_env(&["token", "--tenant", "shop"], None, &[("COHORT_SECRET", "short")]);
    assert_eq!(short.status.code(), Some(1));
    assert!(text(&short.stderr).contains("at least 32"));
}

#[test]
fn preview_links_verify_at_the_edge_and_are_checked_against_the_config() {
    let out = cohort_with_env(
        &[
            "preview-link",
            "--tenant",
            "shop",
            "--force",
            "checkout-flow=one-page",
            "--ttl",
            "15m",
            "--url",
            "https://shop.example/checkout?ref=qa",
            "--config",
            "examples/tenants/shop.json",
        ],
        None,
        &[("COHORT_SECRET", SECRET)],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let link = text(&out.stdout).trim().to_owned();
    let token = link
        .strip_prefix("https://shop.example/checkout?ref=qa&cohort_preview=")
        .expect("link keeps the query");
    let secret = cohort_core::MasterSecret::new(SECRET).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let preview = cohort_core::preview::Preview::verify(token, &secret.preview_key("shop"), "shop", now).unwrap();
    assert_eq!(
        preview.forced.get("checkout-flow").map(String::as_str),
        Some("one-page")
    );
    assert!((preview.expires - now - 900).abs() <= 2);

    let unknown = cohort_with_env(
        &[
            "preview-link",
            "--tenant",
            "shop",
            "--force",
            "checkout-flow=three-page",
            "--config",
            "examples/tenants/shop.json",
        ],
        None,
        &[("COHORT_SECRET", SECRET)],
    );
    assert_eq!(unknown.status.code(), Some(1));
    assert!(text(&unknown.stderr).contains("`checkout-flow` has no variant `three-page`"));
    let long = cohort_with_env(
        &["preview-link", "--tenant", "shop", "--force", "a=b", "--ttl", "90d"],
        None,
        &[("COHORT_SECRET", SECRET)],
    );
    assert!(text(&long.stderr).contains("longer than 30 days"));
}

#[test]
fn kv_entries_prints_what_publish_writes_and_refuses_invalid_configs() {
    let out = cohort(
        &["kv-entries", "examples/tenants/shop.json", "examples/tenants/news.json"],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let entries: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("a JSON array");
    let shop =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/tenants/shop.json")).unwrap();
    assert_eq!(entries[0]["key"], "tenant:shop");
    assert_eq!(entries[0]["value"], shop.as_str(), "the config exactly as validated");
    assert!(
        entries
            .iter()
            .any(|e| e["key"] == "host:shop.localhost" && e["value"] == "shop")
    );
    assert!(entries.iter().any(|e| e["key"] == "tenant:news"));

    let from_stdin = cohort(&["kv-entries", "-"], Some(&shop));
    assert!(from_stdin.status.success(), "{}", text(&from_stdin.stderr));
    let first: Vec<serde_json::Value> = serde_json::from_slice(&from_stdin.stdout).unwrap();
    assert_eq!(first[0], entries[0]);

    let invalid = cohort(&["kv-entries", "-"], Some(r#"{"schema": 1}"#));
    assert_eq!(invalid.status.code(), Some(1));
    assert!(
        text(&invalid.stderr).starts_with("cohort: -: "),
        "{}",
        text(&invalid.stderr)
    );
    assert!(invalid.stdout.is_empty());
}
