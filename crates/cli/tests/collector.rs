//! The real `cohort collector` process: starts with no arguments on an embedded SQLite file,
//! loses nothing it acknowledged when killed with SIGKILL, drains in-flight requests on SIGTERM,
//! and runs the sample-ratio monitor without anyone reading results.
//!
//! SIGKILL leaves the process's writes in the kernel's page cache, so the kill -9 test shows
//! all-or-nothing batches and no acknowledged loss across a process crash, not an fsync before
//! each 2xx; durability.rs shows that.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cohort_core::Exposure;
use common::{
    SECRET, TENANT, batch, exposed_units, post, read_response, signed_request_head, start_collector,
    start_collector_with, stop_with_sigterm,
};

#[test]
fn kill_9_loses_no_acknowledged_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut acknowledged: Vec<(String, String)> = Vec::new();
    let mut sent: Vec<(String, String)> = Vec::new();
    // Kill at several moments, restarting on the same file each time.
    for (round, run_for) in [
        Duration::from_millis(400),
        Duration::from_millis(900),
        Duration::from_millis(1500),
    ]
    .into_iter()
    .enumerate()
    {
        let mut collector = start_collector(dir.path());
        let address = collector.address;
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new((Vec::new(), Vec::new())));
        let senders: Vec<_> = (0..4)
            .map(|sender| {
                let (stop, log) = (stop.clone(), log.clone());
                std::thread::spawn(move || {
                    let experiment = format!("round{round}-sender{sender}");
                    for n in 0.. {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let variant = format!("b{n}");
                        log.lock().unwrap().1.push((experiment.clone(), variant.clone()));
                        match post(address, &batch(&experiment, &variant)) {
                            Ok((200, _)) => log.lock().unwrap().0.push((experiment.clone(), variant)),
                            Ok((status, body)) => panic!("unexpected {status}: {body}"),
                            Err(_) => break, // the collector is gone
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(run_for);
        collector.child.kill().unwrap(); // SIGKILL
        collector.child.wait().unwrap();
        stop.store(true, Ordering::SeqCst);
        for sender in senders {
            sender.join().unwrap();
        }
        let (acked, attempted) = std::mem::take(&mut *log.lock().unwrap());
        assert!(
            !acked.is_empty(),
            "round {round}: nothing was acknowledged before the kill"
        );
        acknowledged.extend(acked);
        sent.extend(attempted);
    }

    let collector = start_collector(dir.path());
    let mut by_experiment = std::collections::HashMap::new();
    for (experiment, variant) in &sent {
        let units = by_experiment
            .entry(experiment.clone())
            .or_insert_with(|| exposed_units(collector.address, experiment));
        let stored = units.get(variant).copied().unwrap_or(0);
        // All or nothing: a batch is either wholly there or wholly absent...
        assert!(
            stored == 0 || stored == 100,
            "{experiment}/{variant}: {stored} of 100 records"
        );
        // ...and wholly there if it was acknowledged.
        if acknowledged.contains(&(experiment.clone(), variant.clone())) {
            assert_eq!(stored, 100, "{experiment}/{variant} was acknowledged but lost");
        }
    }
    stop_with_sigterm(collector);
}

#[test]
fn sigterm_drains_a_request_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let collector = start_collector(dir.path());
    assert!(
        dir.path().join("data/cohort.db").is_file(),
        "no SQLite file at the default path"
    );
    let address = collector.address;

    // Half a request is on the wire when SIGTERM arrives; the rest follows after it.
    let body = batch("drain", "late");
    let mut stream = TcpStream::connect(address).unwrap();
    stream.write_all(signed_request_head(&body).as_bytes()).unwrap();
    let (first, second) = body.split_at(body.len() / 2);
    stream.write_all(first.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    Command::new("kill")
        .args(["-TERM", &collector.child.id().to_string()])
        .status()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        TcpStream::connect(address).is_err(),
        "still accepting connections after SIGTERM"
    );
    stream.write_all(second.as_bytes()).unwrap();
    let (status, response) = read_response(&mut stream).unwrap();
    assert_eq!(status, 200, "{response}");
    stop_with_sigterm(collector);

    // Committed before the drain finished: a fresh collector sees it.
    let collector = start_collector(dir.path());
    assert_eq!(exposed_units(collector.address, "drain").get("late"), Some(&100));
    stop_with_sigterm(collector);
}

/// `GET /metrics` of the running collector.
fn metrics(address: SocketAddr) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nhost: collector\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let (status, body) = read_response(&mut stream).unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

#[test]
fn the_binary_checks_sample_ratios_on_its_own_after_a_burst() {
    let dir = tempfile::tempdir().unwrap();
    // The schedule stays at its default (a minute, and once at start); the burst is set small by
    // environment so 200 new exposures start a check within the test.
    let collector = start_collector_with(dir.path(), &[("COHORT_SRM_BURST_RECORDS", "150")]);
    let records: Vec<Exposure> = (0..200)
        .map(|i| {
            let variant = if i < 150 { "control" } else { "green" };
            Exposure::new(TENANT, "srm", variant, &format!("srm-{i}"), 1, 1_800_000_000_000)
        })
        .collect();
    let (status, body) = post(collector.address, &serde_json::to_string(&records).unwrap()).unwrap();
    assert_eq!(status, 200, "{body}");

    let series = format!("cohort_srm_mismatch{{tenant=\"{TENANT}\",experiment=\"srm\"}} 1\n");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = metrics(collector.address);
        if text.contains(&series) {
            assert!(text.contains("\ncohort_srm_last_check_timestamp_seconds "), "{text}");
            break;
        }
        assert!(Instant::now() < deadline, "no mismatch exported:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    }
    stop_with_sigterm(collector);

    let refused = Command::new(env!("CARGO_BIN_EXE_cohort"))
        .args(["collector", "--srm-interval-seconds", "0"])
        .env("COHORT_SECRET", SECRET)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("--srm-interval-seconds"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

#[test]
fn the_secret_can_come_from_a_file_and_only_one_source() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret");
    // As secret mounts often write it: with a trailing newline, which is not part of the secret.
    std::fs::write(&file, format!("{SECRET}\n")).unwrap();
    let collector = start_collector_with(dir.path(), &[("COHORT_SECRET_FILE", file.to_str().unwrap())]);
    // A batch signed with the secret verifies: the file's secret is exactly it.
    let (status, body) = post(collector.address, &batch("from-file", "control")).unwrap();
    assert_eq!(status, 200, "{body}");
    stop_with_sigterm(collector);

    let both = Command::new(env!("CARGO_BIN_EXE_cohort"))
        .arg("collector")
        .env("COHORT_SECRET", SECRET)
        .env("COHORT_SECRET_FILE", &file)
        .output()
        .unwrap();
    assert!(!both.status.success());
    assert!(String::from_utf8_lossy(&both.stderr).contains("not both"));
    let missing = Command::new(env!("CARGO_BIN_EXE_cohort"))
        .arg("collector")
        .env_remove("COHORT_SECRET")
        .env("COHORT_SECRET_FILE", dir.path().join("absent"))
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("COHORT_SECRET_FILE"));
}

#[test]
fn json_logs_and_a_metrics_token() {
    use std::io::{BufRead, BufReader, Read};
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cohort"))
        .arg("collector")
        .current_dir(dir.path())
        .env("COHORT_SECRET", SECRET)
        .env("COHORT_LISTEN", "127.0.0.1:0")
        .env("COHORT_LOG_FORMAT", "json")
        .env("COHORT_METRICS_TOKEN", "scraper-token-0123456789")
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    let address: SocketAddr = loop {
        let mut line = String::new();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "collector exited");
        // Every line is one JSON object.
        let entry: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        if entry["fields"]["message"] == "collector listening" {
            break entry["fields"]["address"].as_str().unwrap().parse().unwrap();
        }
        assert!(Instant::now() < deadline, "collector did not start");
    };
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    let scrape = |token: Option<&str>| {
        let mut stream = TcpStream::connect(address).unwrap();
        let authorization = token.map_or(String::new(), |t| format!("authorization: Bearer {t}\r\n"));
        write!(
            stream,
            "GET /metrics HTTP/1.1\r\nhost: collector\r\n{authorization}connection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    };
    assert!(scrape(None).starts_with("HTTP/1.1 401"));
    assert!(scrape(Some("scraper-token-wrong-0000")).starts_with("HTTP/1.1 401"));
    let scraped = scrape(Some("scraper-token-0123456789"));
    assert!(
        scraped.starts_with("HTTP/1.1 200") && scraped.contains("cohort_"),
        "{scraped}"
    );
    common::send_sigterm(child.id());
    common::wait_for_clean_exit(&mut child, "collector");

    let short = Command::new(env!("CARGO_BIN_EXE_cohort"))
        .arg("collector")
        .env("COHORT_SECRET", SECRET)
        .env("COHORT_METRICS_TOKEN", "short")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&short.stderr).contains("COHORT_METRICS_TOKEN"));
}
