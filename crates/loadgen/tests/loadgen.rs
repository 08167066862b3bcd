//! `cohort-loadgen`'s argument checks and its report of an unreachable edge (its runs against a
//! real edge are in tests/pipeline and the demo).

use std::process::{Command, Output};

fn loadgen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cohort-loadgen"))
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .output()
        .expect("cohort-loadgen runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn loadgen_refuses_bad_arguments_before_sending_anything() {
    let cases: [(&[&str], &str); 8] = [
        (&["--edge", "https://127.0.0.1:8787"], "plain HTTP"),
        (&["--edge", "http://127.0.0.1:8787/shop"], "no path"),
        (&["--host", "shop..localhost"], "--host `shop..localhost`"),
        (
            &["--conversion-rate", "1.5"],
            "--conversion-rate 1.5: expected a probability",
        ),
        (&["--effect", "hero-banner:1.5"], "--effect `hero-banner:1.5`: no `=`"),
        (&["--page", "products"], "--page `products`: expected a path"),
        (
            &["--config", "examples/tenants/shop.json", "--host", "news.localhost"],
            "--host `news.localhost` is not a hostname of tenant `shop` in --config",
        ),
        (
            &["--config", "examples/tenants/none.json"],
            "examples/tenants/none.json: ",
        ),
    ];
    for (extra, expected) in cases {
        let mut args = Vec::new();
        for (flag, default) in [("--edge", "http://127.0.0.1:9"), ("--host", "shop.localhost")] {
            if !extra.contains(&flag) {
                args.extend([flag, default]);
            }
        }
        args.extend_from_slice(extra);
        let out = loadgen(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(text(&out.stderr).contains(expected), "{args:?}: {}", text(&out.stderr));
        assert!(out.stdout.is_empty(), "{args:?} printed a summary");
    }
}

#[test]
fn loadgen_reports_an_unreachable_edge_as_failed_visitors() {
    // Nothing listens on a port just released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let edge = format!("http://127.0.0.1:{port}");
    let out = loadgen(&["--edge", &edge, "--host", "shop.localhost", "--visitors", "3", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON summary");
    assert_eq!(summary["visitors"], 3);
    assert_eq!(summary["failed_visitors"], 3);
    assert!(
        summary["failures"][0]
            .as_str()
            .unwrap()
            .contains("connecting to 127.0.0.1"),
        "{summary}"
    );
}
