//! `cohort publish --collector` as a client of the real collector's config API, and `cohort token
//! --admin`: a config is stored as the next version with its author and comment, a stale version
//! is refused with the collector's reason, and a dry run stores nothing.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use std::io::Write;
use std::net::{SocketAddr, TcpStream};

use cohort_core::secrets::MasterSecret;
use common::{SECRET, read_response, start_collector, stop_with_sigterm};
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn cohort(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cohort"))
        .args(args)
        .env("COHORT_SECRET", SECRET)
        .env_remove("COHORT_ADMIN_TOKEN")
        .env_remove("COHORT_COLLECTOR_URL")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The tenant's config history as the API lists it, read with the read token.
fn history(address: SocketAddr, tenant: &str) -> Vec<Value> {
    let token = MasterSecret::new(SECRET).unwrap().results_read_token(tenant);
    let mut stream = TcpStream::connect(address).unwrap();
    write!(
        stream,
        "GET /v1/tenants/{tenant}/config/history HTTP/1.1\r\nhost: collector\r\n\
         authorization: Bearer {token}\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let (status, body) = read_response(&mut stream).unwrap();
    assert_eq!(status, 200, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    body["versions"].as_array().unwrap().clone()
}

#[test]
fn publish_through_the_collector_stores_the_next_version_and_refuses_a_stale_one() {
    let dir = tempfile::tempdir().unwrap();
    let collector = start_collector(dir.path());
    let url = format!("http://{}", collector.address);
    let shop = root().join("examples/tenants/shop.json");
    let shop = shop.to_str().unwrap();

    let first = cohort(&[
        "publish",
        shop,
        "--collector",
        &url,
        "--author",
        "ana",
        "--comment",
        "launch",
    ]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let stdout = text(&first.stdout);
    // This collector has no KV flags: the version is stored, not live.
    assert!(stdout.contains("stored, not yet live"), "{stdout}");
    let versions = history(collector.address, "shop");
    assert_eq!(versions.len(), 1);
    assert_eq!(
        (versions[0]["author"].as_str(), versions[0]["comment"].as_str()),
        (Some("ana"), Some("launch"))
    );

    let again = cohort(&["publish", shop, "--collector", &url]);
    assert!(!again.status.success());
    let stderr = text(&again.stderr);
    assert!(
        stderr.contains("409") && stderr.contains("is not the next version"),
        "{stderr}"
    );

    // The next version, as a dry run: its diff is printed and nothing is stored.
    let mut config: Value = serde_json::from_str(&std::fs::read_to_string(shop).unwrap()).unwrap();
    config["version"] = (config["version"].as_u64().unwrap() + 1).into();
    config["experiments"][0]["name"] = "Renamed for the test".into();
    let next = dir.path().join("next.json");
    std::fs::write(&next, config.to_string()).unwrap();
    let dry = cohort(&["publish", next.to_str().unwrap(), "--collector", &url, "--dry-run"]);
    assert!(dry.status.success(), "{}", text(&dry.stderr));
    let stdout = text(&dry.stdout);
    assert!(
        stdout.contains("dry run, nothing stored") && stdout.contains("other_changed"),
        "{stdout}"
    );
    assert_eq!(history(collector.address, "shop").len(), 1);

    let as_json = cohort(&[
        "publish",
        next.to_str().unwrap(),
        "--collector",
        &url,
        "--json",
        "--comment",
        "renamed",
    ]);
    assert!(as_json.status.success(), "{}", text(&as_json.stderr));
    let answers: Value = serde_json::from_str(&text(&as_json.stdout)).unwrap();
    assert_eq!(answers[0]["answer"]["stored"], true);
    assert_eq!(answers[0]["answer"]["version"], config["version"]);
    assert_eq!(history(collector.address, "shop").len(), 2);

    stop_with_sigterm(collector);
}

#[test]
fn admin_tokens_need_a_plain_label_and_publish_needs_a_destination() {
    let good = cohort(&["token", "--tenant", "shop", "--admin", "ana@shop.example"]);
    assert!(good.status.success());
    assert!(text(&good.stdout).starts_with("ana@shop.example~"));
    let bad = cohort(&["token", "--tenant", "shop", "--admin", "ana smith"]);
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("--admin `ana smith`"),
        "{}",
        text(&bad.stderr)
    );

    let shop = root().join("examples/tenants/shop.json");
    let nowhere = cohort(&["publish", shop.to_str().unwrap()]);
    assert!(!nowhere.status.success());
    assert!(
        text(&nowhere.stderr).contains("--collector"),
        "{}",
        text(&nowhere.stderr)
    );
}

#[test]
fn results_prints_the_collectors_table_or_its_json() {
    let dir = tempfile::tempdir().unwrap();
    let collector = start_collector(dir.path());
    let url = format!("http://{}", collector.address);
    for variant in ["control", "green"] {
        let (status, body) = common::post(collector.address, &common::batch("cta", variant)).unwrap();
        assert_eq!(status, 200, "{body}");
    }
    let table = cohort(&[
        "results",
        "--collector",
        &url,
        "--tenant",
        "shop",
        "--experiment",
        "cta",
    ]);
    assert!(table.status.success(), "{}", text(&table.stderr));
    let stdout = text(&table.stdout);
    assert!(stdout.starts_with("shop/cta: sequential intervals"), "{stdout}");
    assert!(
        stdout.contains("sample ratio ok (expected split from equal_over_observed)"),
        "{stdout}"
    );
    for variant in ["control", "green"] {
        assert!(
            stdout
                .lines()
                .any(|line| line.split_whitespace().collect::<Vec<_>>() == [variant, "100", "50.00%"]),
            "{stdout}"
        );
    }

    let json = cohort(&[
        "results",
        "--collector",
        &url,
        "--tenant",
        "shop",
        "--experiment",
        "cta",
        "--json",
        "--param",
        "inference=fixed",
    ]);
    assert!(json.status.success(), "{}", text(&json.stderr));
    let doc: Value = serde_json::from_str(&text(&json.stdout)).unwrap();
    assert_eq!(doc["inference"]["method"], "fixed");
    assert_eq!(doc["variants"][1]["exposed_units"], 100);

    let refused = cohort(&[
        "results",
        "--collector",
        &url,
        "--tenant",
        "shop",
        "--experiment",
        "cta",
        "--param",
        "inference=psychic",
    ]);
    assert!(!refused.status.success());
    assert!(text(&refused.stderr).contains("400"), "{}", text(&refused.stderr));
    stop_with_sigterm(collector);
}
