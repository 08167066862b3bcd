//! `cohort publish --local` against wrangler's real local KV (the store `wrangler dev` reads).
//! Needs the npm tooling (`scripts/setup.sh --edge`), which `make test` installs first.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn wrangler() -> PathBuf {
    let path = root().join("node_modules/.bin/wrangler");
    assert!(
        path.exists(),
        "{} is missing: run scripts/setup.sh --edge",
        path.display()
    );
    path
}

fn publish(state: &Path, files: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cohort"))
        .arg("publish")
        .args(files)
        .args(["--local", "--persist-to"])
        .arg(state)
        .arg("--wrangler")
        .arg(wrangler())
        .current_dir(root())
        .output()
        .expect("cohort runs")
}

fn kv(state: &Path, args: &[&str]) -> String {
    let output = Command::new(wrangler())
        .arg("kv")
        .args(args)
        .args(["--binding", "CONFIG", "--local", "--persist-to"])
        .arg(state)
        .env("WRANGLER_SEND_METRICS", "false")
        .current_dir(root())
        .output()
        .expect("wrangler runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn publishes_versions_forward_only_and_guards_hostnames() {
    let dir = std::env::temp_dir().join(format!("cohort-publish-test-{}", std::process::id()));
    let state = dir.join("state");
    std::fs::create_dir_all(&dir).unwrap();
    let shop = root().join("examples/tenants/shop.json");
    let news = root().join("examples/tenants/news.json");

    let first = publish(&state, &[&shop, &news]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(text(&first.stdout).contains("published tenant `shop` version 14"));
    assert_eq!(kv(&state, &["key", "get", "host:shop.localhost", "--text"]), "shop");
    assert_eq!(kv(&state, &["key", "get", "host:news.example", "--text"]), "news");
    let stored: serde_json::Value =
        serde_json::from_str(&kv(&state, &["key", "get", "tenant:shop", "--text"])).unwrap();
    assert_eq!(stored["version"], 14);

    let again = publish(&state, &[&shop]);
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again.stderr).contains("version 14 is not greater than the stored version 14 of tenant `shop`"));

    let shop_text = std::fs::read_to_string(&shop).unwrap();
    let newer = dir.join("shop-15.json");
    std::fs::write(&newer, shop_text.replacen("\"version\": 14", "\"version\": 15", 1)).unwrap();
    let upgraded = publish(&state, &[&newer]);
    assert!(upgraded.status.success(), "{}", text(&upgraded.stderr));
    let stored: serde_json::Value =
        serde_json::from_str(&kv(&state, &["key", "get", "tenant:shop", "--text"])).unwrap();
    assert_eq!(stored["version"], 15);

    let squatter = dir.join("squatter.json");
    let news_text = std::fs::read_to_string(&news).unwrap();
    std::fs::write(
        &squatter,
        news_text
            .replacen("\"tenant\": \"news\"", "\"tenant\": \"squatter\"", 1)
            .replacen("\"news.example\"", "\"shop.example\"", 1),
    )
    .unwrap();
    let refused = publish(&state, &[&squatter]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused.stderr).contains("hostname `shop.example` is served by tenant `shop`"),
        "{}",
        text(&refused.stderr)
    );

    let keys_before = kv(&state, &["key", "list"]);
    let broken = dir.join("broken.json");
    std::fs::write(&broken, shop_text.replacen("\"weight\": 5000}", "\"weight\": 4000}", 1)).unwrap();
    let invalid = publish(&state, &[&broken, &news]);
    assert_eq!(invalid.status.code(), Some(1));
    assert!(text(&invalid.stderr).contains("experiments[0].variants: weights sum to 9000"));
    assert_eq!(
        kv(&state, &["key", "list"]),
        keys_before,
        "an invalid file writes nothing"
    );
    std::fs::remove_dir_all(dir).unwrap();
}
