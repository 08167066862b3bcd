//! Shared harness for tests of the real `cohort collector` binary: start it (directly or under a
//! wrapper such as strace), send it signed batches over plain HTTP/1.1, read results back, stop it.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cohort_core::Exposure;
use cohort_core::beacon::{EXPOSURES_PATH, sign_batch};
use cohort_core::secrets::MasterSecret;
use serde_json::Value;

pub const SECRET: &str = "binary-test-secret-of-at-least-32-bytes!";
pub const TENANT: &str = "shop";

pub struct Collector {
    /// The started process: the collector itself, or the wrapper that runs it.
    pub child: Child,
    pub address: SocketAddr,
}

/// Starts `cohort collector` with no arguments in `dir` (configured by environment only) and
/// waits for its "listening" log line.
pub fn start_collector(dir: &Path) -> Collector {
    start_collector_with(dir, &[])
}

/// [`start_collector`] with more environment variables.
pub fn start_collector_with(dir: &Path, environment: &[(&str, &str)]) -> Collector {
    start_collector_under(&[], dir, environment)
}

/// [`start_collector_with`], run by `wrapper` (a command and its arguments, e.g. `strace … --`)
/// that passes stderr through; `Collector::child` is then the wrapper's process.
pub fn start_collector_under(wrapper: &[&str], dir: &Path, environment: &[(&str, &str)]) -> Collector {
    let binary = env!("CARGO_BIN_EXE_cohort");
    let mut command = match wrapper.split_first() {
        Some((program, arguments)) => {
            let mut command = Command::new(program);
            command.args(arguments).arg(binary);
            command
        }
        None => Command::new(binary),
    };
    // A test that hands the secret over in a file must not also set it directly.
    if environment.iter().any(|(name, _)| *name == "COHORT_SECRET_FILE") {
        command.env_remove("COHORT_SECRET");
    } else {
        command.env("COHORT_SECRET", SECRET);
    }
    let mut child = command
        .arg("collector")
        .current_dir(dir)
        .env("COHORT_LISTEN", "127.0.0.1:0")
        .env("COHORT_RATE_LIMIT", "10000000")
        .env("RUST_LOG", "info")
        .envs(environment.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot run {:?}: {error}", command.get_program()));
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut log = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let address = loop {
        let start = log.len();
        assert!(
            stderr.read_line(&mut log).unwrap() > 0,
            "collector exited before listening; its output:\n{log}"
        );
        if let Some(rest) = log[start..].split("address=").nth(1) {
            break rest.split_whitespace().next().unwrap().parse().unwrap();
        }
        assert!(Instant::now() < deadline, "collector did not start; its output:\n{log}");
    };
    // Keep draining its log so it never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    Collector { child, address }
}

pub fn now_seconds() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// 100 exposures of experiment `experiment`, all to variant `variant`, units unique to it.
pub fn batch(experiment: &str, variant: &str) -> String {
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

pub fn signed_request_head(body: &str) -> String {
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
pub fn read_response(stream: &mut TcpStream) -> std::io::Result<(u16, String)> {
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

/// Posts a signed exposure batch on a fresh connection: (status, body).
pub fn post(address: SocketAddr, body: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(address)?;
    stream.write_all(signed_request_head(body).as_bytes())?;
    stream.write_all(body.as_bytes())?;
    read_response(&mut stream)
}

/// Exposed units per variant of `experiment`, read through the results API.
pub fn exposed_units(address: SocketAddr, experiment: &str) -> HashMap<String, u64> {
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

/// Sends SIGTERM to process `pid`.
pub fn send_sigterm(pid: u32) {
    let status = Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
    assert!(status.success(), "kill -TERM {pid} failed");
}

/// Waits up to 20 s for `child` to exit and asserts it exited successfully.
pub fn wait_for_clean_exit(child: &mut Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{what} exited with {status} after SIGTERM");
            return;
        }
        assert!(Instant::now() < deadline, "{what} did not stop after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Stops a directly started collector with SIGTERM and checks that it exits cleanly.
pub fn stop_with_sigterm(mut collector: Collector) {
    send_sigterm(collector.child.id());
    wait_for_clean_exit(&mut collector.child, "collector");
}
