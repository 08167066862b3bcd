//! The real `cohort collector` process: starts with no arguments on an embedded SQLite file,
//! loses nothing it acknowledged when killed with SIGKILL, drains in-flight requests on SIGTERM,
//! and runs the sample-ratio monitor without anyone reading results.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cohort_core::Exposure;
use cohort_core::beacon::{EXPOSURES_PATH, sign_batch};
use cohort_core::keys::MasterSecret;
use serde_json::Value;

const SECRET: &str = "binary-test-secret-of-at-least-32-bytes!";
const TENANT: &str = "shop";

struct Collector {
    child: Child,
    address: SocketAddr,
}

/// Starts `cohort collector` with no arguments in `dir` (configured by environment only) and
/// waits for its "listening" log line.
fn start_collector(dir: &Path) -> Collector {
    start_collector_with(dir, &[])
}

/// [`start_collector`] with more environment variables.
fn start_collector_with(dir: &Path, environment: &[(&str, &str)]) -> Collector {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cohort"))
        .arg("collector")
        .current_dir(dir)
        .env("COHORT_SECRET", SECRET)
        .env("COHORT_LISTEN", "127.0.0.1:0")
        .env("COHORT_RATE_LIMIT", "10000000")
        .env("RUST_LOG", "info")
        .envs(environment.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cohort runs");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let address = loop {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "collector exited before listening"
        );
        if let Some(rest) = line.split("address=").nth(1) {
            break rest.split_whitespace().next().unwrap().parse().unwrap();
        }
        assert!(Instant::now() < deadline, "collector did not start");
    };
    // Keep draining its log so it never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    Collector { child, address }
}

fn now_seconds() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// 100 exposures of experiment `experiment`, all to variant `variant`, units unique to it.
fn batch(experiment: &str, variant: &str) -> String {
    let records: Vec<Exposure> = (0..100)
        .map(|i| {
            Exposure::new(
                TENANT,
                experiment,
                variant,
                &format!("{variant}-{i}"),
                1,
                1_800_000_000_000,
            )
        })
        .collect();
    serde_json::to_string(&records).unwrap()
}

fn signed_request_head(body: &str) -> String {
    let secret = MasterSecret::new(SECRET).unwrap();
    let headers = sign_batch(&secret.beacon_key(TENANT), TENANT, now_seconds(), body.as_bytes());
    format!(
        "POST {EXPOSURES_PATH} HTTP/1.1\r\nhost: collector\r\ncontent-type: application/json\r\n\
         content-length: {}\r\ncohort-tenant: {}\r\ncohort-timestamp: {}\r\ncohort-signature: {}\r\n\
         connection: close\r\n\r\n",
        body.len(),
        headers.tenant,
        headers.timestamp,
        headers.signature
    )
}

/// Reads a `connection: close` response to the end: (status, body).
fn read_response(stream: &mut TcpStream) -> std::io::Result<(u16, String)> {
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no HTTP status in {response:?}")))?;
    let body = response.split_once("\r\n\r\n").map_or("", |(_, body)| body).to_owned();
    Ok((status, body))
}

fn post(address: SocketAddr, body: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(address)?;
    stream.write_all(signed_request_head(body).as_bytes())?;
    stream.write_all(body.as_bytes())?;
    read_response(&mut stream)
}

/// Exposed units per variant of `experiment`, read through the results API.
fn exposed_units(address: SocketAddr, experiment: &str) -> std::collections::HashMap<String, u64> {
    let token = MasterSecret::new(SECRET).unwrap().results_read_token(TENANT);
    let mut stream = TcpStream::connect(address).unwrap();
    write!(
        stream,
        "GET /v1/tenants/{TENANT}/experiments/{experiment}/results HTTP/1.1\r\nhost: collector\r\n\
         authorization: Bearer {token}\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let (status, body) = read_response(&mut stream).unwrap();
    assert_eq!(status, 200, "{body}");
    let results: Value = serde_json::from_str(&body).unwrap();
    results["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["variant"].as_str().unwrap().to_owned(),
                v["exposed_units"].as_u64().unwrap(),
            )
        })
        .collect()
}

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

fn stop_with_sigterm(mut collector: Collector) {
    let status = Command::new("kill")
        .args(["-TERM", &collector.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = collector.child.try_wait().unwrap() {
            assert!(status.success(), "collector exited with {status} after SIGTERM");
            return;
        }
        assert!(Instant::now() < deadline, "collector did not stop after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
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
