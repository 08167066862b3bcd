//! "A 2xx means the batch is on stable storage", checked where a crash test cannot: the real
//! `cohort collector` runs under strace, and for every acknowledged batch the trace must show,
//! between the read that completed its request on the socket and the write of its `HTTP/1.1 200`
//! on that socket, a write to the SQLite WAL followed by an fsync (or fdatasync) of the WAL or the
//! database file. A kill -9 test (crates/cli/tests/collector.rs) passes even with
//! `synchronous = OFF`, because SIGKILL leaves the page cache to the kernel; this one does not.
//!
//! strace comes from `scripts/setup.sh --durability` (Debian package `strace`); without it the
//! test fails with that hint rather than skip.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use std::collections::HashMap;
use std::process::Command;

use common::{batch, post, send_sigterm, start_collector_under, wait_for_clean_exit};

/// Request and response traffic, SQLite's writes, and the calls that make writes durable.
const TRACED_SYSCALLS: &str = "trace=read,readv,recvfrom,recvmsg,write,writev,sendto,sendmsg,\
                               pwrite64,pwritev,pwritev2,fsync,fdatasync";
const SENDERS: usize = 4;
const BATCHES_PER_SENDER: usize = 3;

fn require_strace() {
    let found = Command::new("strace").arg("-V").output();
    assert!(
        found.as_ref().is_ok_and(|output| output.status.success()),
        "strace is needed to watch the collector's fsyncs but is not installed ({found:?}); \
         run `bash scripts/setup.sh --durability` (or `apt-get install strace`)"
    );
}

/// The process whose parent is `parent` (the collector under strace).
fn only_child_of(parent: u32) -> u32 {
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else {
            continue;
        };
        // `pid (comm) state ppid …`; comm may hold spaces and parentheses, so split after the last `)`.
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let parent_of_entry = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|ppid| ppid.parse::<u32>().ok());
        if parent_of_entry == Some(parent) {
            children.push(pid);
        }
    }
    assert_eq!(children.len(), 1, "children of strace (pid {parent}): {children:?}");
    children[0]
}

/// Kills the traced collector (and so ends strace) when the test fails before stopping it.
struct KillOnPanic(u32);

impl Drop for KillOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = Command::new("kill").args(["-KILL", &self.0.to_string()]).status();
        }
    }
}

/// One system call as strace reported it once it returned (an `<unfinished ...>` call joined with
/// its `<... resumed>` rest).
#[derive(Debug)]
struct Syscall {
    time: String,
    name: String,
    /// The first argument's fd annotation from `-y`: a path, or `socket:[inode]`.
    fd_target: String,
    /// The return value; `None` for `?`.
    result: Option<i64>,
    /// Everything between the parentheses (the data strace printed, escaped).
    arguments: String,
}

impl Syscall {
    fn is_socket_read(&self) -> bool {
        matches!(self.name.as_str(), "read" | "readv" | "recvfrom" | "recvmsg")
            && self.fd_target.starts_with("socket:")
            && self.result.is_some_and(|bytes| bytes > 0)
    }

    fn is_socket_write(&self) -> bool {
        matches!(self.name.as_str(), "write" | "writev" | "sendto" | "sendmsg")
            && self.fd_target.starts_with("socket:")
            && self.result.is_some_and(|bytes| bytes > 0)
    }

    fn is_file_write(&self, path: &str) -> bool {
        matches!(
            self.name.as_str(),
            "write" | "writev" | "pwrite64" | "pwritev" | "pwritev2"
        ) && self.fd_target == path
            && self.result.is_some_and(|bytes| bytes > 0)
    }

    fn is_sync(&self, paths: &[&str]) -> bool {
        matches!(self.name.as_str(), "fsync" | "fdatasync")
            && paths.contains(&self.fd_target.as_str())
            && self.result == Some(0)
    }
}

/// `name(args) = result`, the part of a line after the thread id and time.
fn parse_call(time: &str, call: &str) -> Option<Syscall> {
    let (name, rest) = call.split_once('(')?;
    // The result follows the last `) = `; escaped data never ends a line.
    let (arguments, result) = rest.rsplit_once(") = ")?;
    let result = result.split_whitespace().next()?.parse().ok();
    let fd_target = arguments
        .split_once('<')
        .filter(|(fd, _)| fd.chars().all(|c| c.is_ascii_digit()))
        .and_then(|(_, annotated)| annotated.split_once('>'))
        .map_or(String::new(), |(target, _)| target.to_owned());
    Some(Syscall {
        time: time.to_owned(),
        name: name.to_owned(),
        fd_target,
        result,
        arguments: arguments.to_owned(),
    })
}

/// The calls of an `strace -f -tt -y` log in the order they returned. Lines are
/// `TID HH:MM:SS.micro call`; a call another thread interrupts is split into
/// `name(args <unfinished ...>` and a later `<... name resumed>rest` of the same thread.
fn parse_trace(text: &str) -> Vec<Syscall> {
    let mut unfinished: HashMap<String, String> = HashMap::new();
    let mut calls = Vec::new();
    for line in text.lines() {
        // strace pads the thread id to a fixed width: `8466  14:28:48.277037 …`.
        let Some((thread, rest)) = line.trim_start().split_once(' ') else {
            continue;
        };
        let Some((time, call)) = rest.trim_start().split_once(' ') else {
            continue;
        };
        if let Some(started) = call.strip_suffix(" <unfinished ...>") {
            unfinished.insert(thread.to_owned(), started.to_owned());
            continue;
        }
        let call = match call.strip_prefix("<... ") {
            Some(resumed) => {
                let Some((_, rest)) = resumed.split_once(" resumed>") else {
                    continue;
                };
                let Some(started) = unfinished.remove(thread) else {
                    continue;
                };
                format!("{started}{rest}")
            }
            // Signals (`--- SIG… ---`), exits (`+++ … +++`) and the like are not calls.
            None if call.starts_with("---") || call.starts_with("+++") => continue,
            None => call.to_owned(),
        };
        if let Some(syscall) = parse_call(time, call.trim_start()) {
            calls.push(syscall);
        }
    }
    calls
}

/// Checks the order read → WAL write → sync → `HTTP/1.1 200` for the batch whose body holds
/// `marker`; `Err` explains what is missing, with the calls that matter.
fn check_batch(calls: &[Syscall], marker: &str, database: &str, wal: &str) -> Result<(), String> {
    let socket = calls
        .iter()
        .find(|call| call.is_socket_read() && call.arguments.contains(marker))
        .map(|call| call.fd_target.clone())
        .ok_or_else(|| format!("no read of a request body holding {marker}"))?;
    let response = calls
        .iter()
        .position(|call| call.is_socket_write() && call.fd_target == socket && call.arguments.contains("HTTP/1.1 200 "))
        .ok_or_else(|| format!("no `HTTP/1.1 200` written on {socket} for {marker}"))?;
    let request_read = calls[..response]
        .iter()
        .rposition(|call| call.is_socket_read() && call.fd_target == socket)
        .ok_or_else(|| format!("{socket}: a response before any read"))?;
    let between = &calls[request_read..response];
    let wal_writes = between.iter().filter(|call| call.is_file_write(wal)).count();
    let syncs_after_a_wal_write = between
        .iter()
        .skip_while(|call| !call.is_file_write(wal))
        .filter(|call| call.is_sync(&[wal, database]))
        .count();
    if syncs_after_a_wal_write > 0 {
        return Ok(());
    }
    Err(format!(
        "{marker}: request read at {} on {socket}, `HTTP/1.1 200` written at {}; in between \
         {wal_writes} WAL writes and, after them, {syncs_after_a_wal_write} fsync/fdatasync of the database",
        calls[request_read].time, calls[response].time,
    ))
}

#[test]
fn every_acknowledged_batch_is_fsynced_before_its_200() {
    require_strace();
    let dir = tempfile::tempdir().unwrap();
    // strace names files by their resolved path.
    let root = dir.path().canonicalize().unwrap();
    let trace_path = root.join("strace.log");
    let trace_arg = trace_path.to_str().unwrap();
    let strace = [
        "strace",
        "-f",
        "-tt",
        "-y",
        "-s",
        "1024",
        "-e",
        TRACED_SYSCALLS,
        "-o",
        trace_arg,
        "--",
    ];
    let mut collector = start_collector_under(&strace, &root, &[]);
    let collector_pid = only_child_of(collector.child.id());
    let _kill_on_panic = KillOnPanic(collector_pid);

    // Concurrent senders, so some batches share a group commit.
    let address = collector.address;
    let senders: Vec<_> = (0..SENDERS)
        .map(|sender| {
            std::thread::spawn(move || {
                for n in 0..BATCHES_PER_SENDER {
                    let marker = format!("durable-batch-{sender}-{n}");
                    let (status, body) = post(address, &batch(&marker, "a")).unwrap();
                    assert_eq!(status, 200, "{marker}: {body}");
                }
            })
        })
        .collect();
    for sender in senders {
        sender.join().unwrap();
    }
    send_sigterm(collector_pid);
    wait_for_clean_exit(&mut collector.child, "strace with the collector");

    let trace = std::fs::read_to_string(&trace_path).unwrap();
    let calls = parse_trace(&trace);
    let database = root.join("data/cohort.db");
    let database = database.to_str().unwrap();
    let wal = format!("{database}-wal");
    assert!(
        calls.iter().any(|call| call.fd_target == wal),
        "the trace names no call on {wal}: is the collector in WAL mode at the default path?"
    );
    let failures: Vec<String> = (0..SENDERS)
        .flat_map(|sender| (0..BATCHES_PER_SENDER).map(move |n| format!("durable-batch-{sender}-{n}")))
        .filter_map(|marker| check_batch(&calls, &marker, database, &wal).err())
        .collect();
    let syncs = calls.iter().filter(|call| call.is_sync(&[&wal, database])).count();
    assert!(
        failures.is_empty(),
        "{} of {} acknowledged batches were not on stable storage when acknowledged \
         ({syncs} fsync/fdatasync of the database in the whole trace):\n{}",
        failures.len(),
        SENDERS * BATCHES_PER_SENDER,
        failures.join("\n")
    );
}

#[test]
fn the_trace_parser_joins_interrupted_calls() {
    // Thread ids shorter than strace's column width are padded with spaces (see thread 102).
    let trace = "\
101 10:00:00.000001 recvfrom(9<socket:[77]>, \"POST /v1/exposures\"..., 8192, 0, NULL, NULL) = 512
  102 10:00:00.000002 fdatasync(5</d/cohort.db-wal> <unfinished ...>
101 10:00:00.000003 recvfrom(9<socket:[77]>, 0x7f, 8192, 0, NULL, NULL) = -1 EAGAIN (Resource temporarily unavailable)
102  10:00:00.000004 <... fdatasync resumed>) = 0
101 10:00:00.000005 --- SIGPIPE {si_signo=SIGPIPE} ---
101 10:00:00.000006 writev(9<socket:[77]>, [{iov_base=\"HTTP/1.1 200 OK\\r\\n\", iov_len=17}], 1) = 17
101 10:00:00.000007 +++ exited with 0 +++
";
    let calls = parse_trace(trace);
    let summary: Vec<(&str, &str, Option<i64>)> = calls
        .iter()
        .map(|call| (call.name.as_str(), call.fd_target.as_str(), call.result))
        .collect();
    assert_eq!(
        summary,
        [
            ("recvfrom", "socket:[77]", Some(512)),
            ("recvfrom", "socket:[77]", Some(-1)),
            ("fdatasync", "/d/cohort.db-wal", Some(0)),
            ("writev", "socket:[77]", Some(17)),
        ]
    );
    assert!(calls[0].is_socket_read() && !calls[1].is_socket_read());
    assert!(calls[2].is_sync(&["/d/cohort.db-wal"]));
    assert!(calls[3].is_socket_write() && calls[3].arguments.contains("HTTP/1.1 200 "));
    assert_eq!(calls[2].time, "10:00:00.000004");
}
