//! Ingest through the router: what is accepted is stored once; everything refused changes nothing.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode};
use cohort_collector::store::{Batch, ExposureFilter};
use cohort_collector::{Rate, RateLimits};
use cohort_core::beacon::{EVENTS_PATH, EXPOSURES_PATH, MAX_BATCH_RECORDS, REPLAY_WINDOW_SECONDS};
use cohort_core::exposure::{HOLDOUT_EXPERIMENT, HOLDOUT_REST_VARIANT, HOLDOUT_VARIANT};
use common::*;
use http_body::Frame;

#[tokio::test]
async fn accepted_exposures_are_stored_once_and_the_first_wins() {
    let harness = Harness::new().await;
    let tenant = unique_tenant("shop");
    let batch = vec![
        exposure(&tenant, "cta", "u1", "control"),
        exposure(&tenant, "cta", "u2", "green"),
        exposure(&tenant, "cta", "u3", "green"),
    ];
    let (status, _, body) = harness
        .post_signed(EXPOSURES_PATH, &tenant, now_seconds(), &json(&batch))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["accepted"].as_u64(), body["inserted"].as_u64()),
        (Some(3), Some(3))
    );

    // A re-sent batch changes nothing; a later exposure of u1 to another variant does not win.
    let (status, _, body) = harness
        .post_signed(EXPOSURES_PATH, &tenant, now_seconds(), &json(&batch))
        .await;
    assert_eq!(
        (status, body["inserted"].as_u64(), body["duplicates"].as_u64()),
        (StatusCode::OK, Some(0), Some(3))
    );
    let later = vec![exposure(&tenant, "cta", "u1", "green")];
    let (_, _, body) = harness
        .post_signed(EXPOSURES_PATH, &tenant, now_seconds(), &json(&later))
        .await;
    assert_eq!(body["duplicates"].as_u64(), Some(1));
    assert_eq!(harness.counts(&tenant).await, (3, 0));
    let units = harness.state.store.exposed_units(&tenant, "cta").await.unwrap();
    assert_eq!(units, vec![("control".to_owned(), 1), ("green".to_owned(), 2)]);
}

#[tokio::test]
async fn holdout_records_are_stored_like_exposures_and_only_that_reserved_key_passes() {
    let harness = Harness::new().await;
    let tenant = unique_tenant("shop");
    let batch = vec![
        exposure(&tenant, HOLDOUT_EXPERIMENT, "u1", HOLDOUT_VARIANT),
        exposure(&tenant, HOLDOUT_EXPERIMENT, "u2", HOLDOUT_REST_VARIANT),
        exposure(&tenant, HOLDOUT_EXPERIMENT, "u3", HOLDOUT_REST_VARIANT),
        exposure(&tenant, "cta", "u2", "green"),
    ];
    let (status, _, body) = harness
        .post_signed(EXPOSURES_PATH, &tenant, now_seconds(), &json(&batch))
        .await;
    assert_eq!((status, body["inserted"].as_u64()), (StatusCode::OK, Some(4)), "{body}");
    // A unit's membership is recorded once: a re-send (or a second record) is a duplicate.
    let again = vec![exposure(&tenant, HOLDOUT_EXPERIMENT, "u1", HOLDOUT_REST_VARIANT)];
    let (_, _, body) = harness
        .post_signed(EXPOSURES_PATH, &tenant, now_seconds(), &json(&again))
        .await;
    assert_eq!(body["duplicates"].as_u64(), Some(1), "{body}");
    let units = harness
        .state
        .store
        .exposed_units(&tenant, HOLDOUT_EXPERIMENT)
        .await
        .unwrap();
    assert_eq!(units, vec![("holdout".to_owned(), 1), ("rest".to_owned(), 2)]);

    let other = unique_tenant("shop");
    for (experiment, variant, field) in [
        ("_other", "control", "experiment"),
        (HOLDOUT_EXPERIMENT, "control", "variant"),
    ] {
        let batch = vec![
            exposure(&other, HOLDOUT_EXPERIMENT, "u1", HOLDOUT_VARIANT),
            exposure(&other, experiment, "u2", variant),
        ];
        let request = signed_request(EXPOSURES_PATH, &other, now_seconds(), &json(&batch));
        let body = assert_refused(&harness, &other, request, StatusCode::BAD_REQUEST, "invalid_record").await;
        assert_eq!(
            (body["error"]["index"].as_u64(), body["error"]["field"].as_str()),
            (Some(1), Some(field)),
            "{experiment}/{variant}"
        );
    }
}

/// Large batches span several INSERT statements; every placeholder must still get its own value.
#[tokio::test]
async fn large_batches_spanning_several_statements_store_every_record() {
    let harness = Harness::new().await;
    let tenant = unique_tenant("shop");
    let batch: Vec<_> = (0..MAX_BATCH_RECORDS)
        .map(|i| {
            exposure(
                &tenant,
                "cta",
                &format!("u{i}"),
                if i % 3 == 0 { "control" } else { "green" },
            )
        })
        .collect();
    let (status, _, body) = harness
        .post_signed(EXPOSURES_PATH, &tenant, now_seconds(), &json(&batch))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["inserted"].as_u64(), Some(MAX_BATCH_RECORDS as u64));
    let control = MAX_BATCH_RECORDS.div_ceil(3) as u64;
    let units = harness.state.store.exposed_units(&tenant, "cta").await.unwrap();
    assert_eq!(
        units,
        vec![
            ("control".to_owned(), control),
            ("green".to_owned(), MAX_BATCH_RECORDS as u64 - control)
        ]
    );

    // A length that is not a multiple of the statement size: full statements plus a remainder.
    let events: Vec<_> = (0..777)
        .map(|i| conversion(&tenant, &format!("e{i}"), &format!("u{i}"), "m", Some(i as f64), at(1)))
        .collect();
    let (status, _, body) = harness
        .post_signed(EVENTS_PATH, &tenant, now_seconds(), &json(&events))
        .await;
    assert_eq!((status, body["inserted"].as_u64()), (StatusCode::OK, Some(777)));
    assert_eq!(harness.counts(&tenant).await, (MAX_BATCH_RECORDS as u64, 777));
}

#[tokio::test]
async fn events_deduplicate_by_event_id() {
    let harness = Harness::new().await;
    let tenant = unique_tenant("shop");
    let batch = vec![
        conversion(&tenant, "order-1", "u1", "purchase", Some(10.0), at(1)),
        conversion(&tenant, "order-1", "u1", "purchase", Some(99.0), at(2)),
        conversion(&tenant, "signup-7", "u2", "signup", None, at(3)),
    ];
    let (status, _, body) = harness
        .post_signed(EVENTS_PATH, &tenant, now_seconds(), &json(&batch))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["inserted"].as_u64(), body["duplicates"].as_u64()),
        (Some(2), Some(1))
    );
    let (_, _, body) = harness
        .post_signed(EVENTS_PATH, &tenant, now_seconds(), &json(&batch))
        .await;
    assert_eq!(body["inserted"].as_u64(), Some(0));
    assert_eq!(harness.counts(&tenant).await, (0, 2));
}

/// Events with and without a value in the same positions of same-sized batches, in both orders:
/// on PostgreSQL a statement first prepared with an absent value once rejected a later batch with
/// a value there (the writer binds an absent value as NaN for that reason).
#[tokio::test]
async fn events_with_and_without_values_store_in_any_order() {
    let harness = Harness::new().await;
    let tenant = unique_tenant("values");
    let batches = [
        [None, Some(10.0)],
        [Some(2.5), None],
        [None, None],
        [Some(1.0), Some(2.0)],
    ];
    for (b, values) in batches.iter().enumerate() {
        let batch: Vec<_> = values
            .iter()
            .enumerate()
            .map(|(i, &value)| conversion(&tenant, &format!("event-{b}-{i}"), "u1", "purchase", value, at(1)))
            .collect();
        let (status, _, body) = harness
            .post_signed(EVENTS_PATH, &tenant, now_seconds(), &json(&batch))
            .await;
        assert_eq!(
            (status, body["inserted"].as_u64()),
            (StatusCode::OK, Some(2)),
            "{values:?}: {body}"
        );
    }
    // Read back through results' aggregate: a NaN stored for an absent value would make the sum
    // NaN, and a lost value would make it short.
    let store = &harness.state.store;
    store
        .insert(
            Batch::Exposures(vec![exposure(&tenant, "hero", "u1", "control")]),
            at(0),
        )
        .await
        .unwrap();
    let aggregates = store
        .metric_aggregates_from_events(&tenant, "hero", &ExposureFilter::default(), 0, &[])
        .await
        .unwrap();
    let sent: f64 = batches.iter().flatten().flatten().sum();
    assert_eq!(
        aggregates
            .iter()
            .map(|a| (a.converted_units, a.has_values, a.value_sum))
            .collect::<Vec<_>>(),
        vec![(1, true, sent)],
        "values stored as sent, absent ones as NULL"
    );
}

/// Sends `request`, expects `status` and `code`, and checks the tenant still has no rows.
async fn assert_refused(
    harness: &Harness,
    tenant: &str,
    request: Request<Body>,
    status: StatusCode,
    code: &str,
) -> serde_json::Value {
    let (actual, _, body) = harness.send(request).await;
    assert_eq!(actual, status, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert_eq!(harness.counts(tenant).await, (0, 0), "a refused batch wrote rows");
    body
}

fn one_exposure(tenant: &str) -> String {
    json(&vec![exposure(tenant, "cta", "u1", "control")])
}

#[tokio::test]
async fn missing_or_wrong_signatures_are_401_and_write_nothing() {
    let harness = Harness::new().await;
    let tenant = unique_tenant("shop");
    let body = one_exposure(&tenant);

    let mut unsigned = signed_request(EXPOSURES_PATH, &tenant, now_seconds(), &body);
    unsigned.headers_mut().remove("cohort-signature");
    assert_refused(
        &harness,
        &tenant,
        unsigned,
        StatusCode::UNAUTHORIZED,
        "missing_signature",
    )
    .await;

    let mut tampered = signed_request(EXPOSURES_PATH, &tenant, now_seconds(), &body);
    *tampered.body_mut() = Body::from(body.replace("control", "green"));
    tampered.headers_mut().remove("content-length");
    assert_refused(&harness, &tenant, tampered, StatusCode::UNAUTHORIZED, "bad_signature").await;

    let mut garbage = signed_request(EXPOSURES_PATH, &tenant, now_seconds(), &body);
    garbage
        .headers_mut()
        .insert("cohort-signature", "not-hex".parse().unwrap());
    assert_refused(&harness, &tenant, garbage, StatusCode::UNAUTHORIZED, "bad_signature").await;
}

#[tokio::test]
async fn a_batch_signed_for_one_tenant_cannot_write_as_another() {
    let harness = Harness::new().await;
    let (attacker, victim) = (unique_tenant("attacker"), unique_tenant("victim"));
    let victim_records = one_exposure(&victim);

    // Signed with the attacker's key, claiming the victim in the header: the signature fails.
    let mut relabelled = signed_request(EXPOSURES_PATH, &attacker, now_seconds(), &victim_records);
    relabelled
        .headers_mut()
        .insert("cohort-tenant", victim.parse().unwrap());
    assert_refused(&harness, &victim, relabelled, StatusCode::UNAUTHORIZED, "bad_signature").await;

    // Honestly signed as the attacker, carrying the victim's records: refused by index and field.
    let request = signed_request(EXPOSURES_PATH, &attacker, now_seconds(), &victim_records);
    let body = assert_refused(&harness, &victim, request, StatusCode::BAD_REQUEST, "tenant_mismatch").await;
    assert_eq!(
        (body["error"]["index"].as_u64(), body["error"]["field"].as_str()),
        (Some(0), Some("tenant"))
    );
    assert_eq!(harness.counts(&attacker).await, (0, 0));
}

#[tokio::test]
async fn the_replay_window_admits_exactly_its_edges_either_way() {
    let harness = Harness::new().await;
    let window = REPLAY_WINDOW_SECONDS;
    let edges = [
        (-(window + 1), Some("expired_signature")),
        (window + 1, Some("expired_signature")),
        (-window, None),
        (window, None),
    ];
    for (skew, refusal) in edges {
        // The collector reads its clock while it handles the request: when the clock shows the same
        // second before and after, that second was the collector's, and the skew is exact. A tick
        // in between makes the attempt inconclusive, so it is repeated under a fresh tenant.
        let mut ticks = 0;
        let (tenant, status, body) = loop {
            let tenant = unique_tenant("shop");
            let before = now_seconds();
            let (status, _, body) = harness
                .post_signed(EXPOSURES_PATH, &tenant, before + skew, &one_exposure(&tenant))
                .await;
            if now_seconds() == before {
                break (tenant, status, body);
            }
            ticks += 1;
            assert!(ticks < 20, "the clock ticked during every attempt");
        };
        match refusal {
            Some(code) => {
                assert_eq!(status, StatusCode::UNAUTHORIZED, "signed {skew} s from now: {body}");
                assert_eq!(body["error"]["code"], code, "signed {skew} s from now: {body}");
                assert_eq!(harness.counts(&tenant).await, (0, 0), "a refused batch wrote rows");
            }
            None => {
                assert_eq!(status, StatusCode::OK, "signed {skew} s from now: {body}");
                assert_eq!(harness.counts(&tenant).await, (1, 0), "signed {skew} s from now");
            }
        }
    }
}

/// A body that counts how many of its chunks were read.
struct CountingBody {
    chunks_left: usize,
    chunk: Bytes,
    read: Arc<AtomicUsize>,
}

impl http_body::Body for CountingBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.chunks_left == 0 {
            return Poll::Ready(None);
        }
        self.chunks_left -= 1;
        self.read.fetch_add(1, Ordering::SeqCst);
        Poll::Ready(Some(Ok(Frame::data(self.chunk.clone()))))
    }
}

fn oversized_request(tenant: &str, declare_length: bool, read: Arc<AtomicUsize>) -> Request<Body> {
    let chunks = 4 * MAX_BODY_BYTES / 1024;
    let mut request = signed_request(EXPOSURES_PATH, tenant, now_seconds(), "[]");
    let body = CountingBody {
        chunks_left: chunks,
        chunk: Bytes::from(vec![b' '; 1024]),
        read,
    };
    *request.body_mut() = Body::new(body);
    if declare_length {
        request.headers_mut().insert("content-length", (chunks * 1024).into());
    } else {
        request.headers_mut().remove("content-length");
    }
    request
}

#[tokio::test]
async fn a_body_of_exactly_the_limit_is_read() {
    let harness = Harness::new().await;
    let tenant = unique_tenant("shop");
    // An empty batch padded with JSON white space to exactly the limit, signed as sent.
    let body = format!("[]{}", " ".repeat(MAX_BODY_BYTES - 2));
    assert_eq!(body.len(), MAX_BODY_BYTES);
    let (status, _, answer) = harness
        .send(signed_request(EXPOSURES_PATH, &tenant, now_seconds(), &body))
        .await;
    assert!(status.is_success(), "{status}: {answer}");
}

#[tokio::test]
async fn oversized_bodies_are_413_without_being_read_and_write_nothing() {
    let harness = Harness::new().await;
    let tenant = unique_tenant("shop");

    let read = Arc::new(AtomicUsize::new(0));
    let request = oversized_request(&tenant, true, read.clone());
    assert_refused(
        &harness,
        &tenant,
        request,
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
    )
    .await;
    assert_eq!(read.load(Ordering::SeqCst), 0, "a declared oversized body was read");

    // Without a declared length, reading stops just past the limit.
    let read = Arc::new(AtomicUsize::new(0));
    let request = oversized_request(&tenant, false, read.clone());
    assert_refused(
        &harness,
        &tenant,
        request,
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
    )
    .await;
    assert!(
        read.load(Ordering::SeqCst) <= MAX_BODY_BYTES / 1024 + 1,
        "read {} KiB",
        read.load(Ordering::SeqCst)
    );
}

#[tokio::test]
async fn more_than_the_batch_limit_is_413_and_writes_nothing() {
    let harness = Harness::new().await;
    let tenant = unique_tenant("shop");
    let records: Vec<_> = (0..=MAX_BATCH_RECORDS)
        .map(|i| conversion(&tenant, &i.to_string(), "u", "m", None, at(0)))
        .collect();
    let request = signed_request(EVENTS_PATH, &tenant, now_seconds(), &json(&records));
    assert_refused(
        &harness,
        &tenant,
        request,
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_many_records",
    )
    .await;
}

#[tokio::test]
async fn malformed_json_is_400_and_writes_nothing() {
    let harness = Harness::new().await;
    let tenant = unique_tenant("shop");
    for (body, code) in [
        ("[{", "malformed_json"),
        ("nonsense", "malformed_json"),
        ("{\"not\": 1}", "malformed_json"),
    ] {
        let request = signed_request(EXPOSURES_PATH, &tenant, now_seconds(), body);
        assert_refused(&harness, &tenant, request, StatusCode::BAD_REQUEST, code).await;
    }
}

#[tokio::test]
async fn one_invalid_record_refuses_the_whole_batch_naming_index_and_field() {
    let harness = Harness::new().await;
    let tenant = unique_tenant("shop");
    let mut batch = vec![
        exposure(&tenant, "cta", "u1", "control"),
        exposure(&tenant, "cta", "u2", "green"),
        exposure(&tenant, "cta", "u3", "green"),
    ];
    batch[2].country = Some("Germany".into());
    let request = signed_request(EXPOSURES_PATH, &tenant, now_seconds(), &json(&batch));
    let body = assert_refused(&harness, &tenant, request, StatusCode::BAD_REQUEST, "invalid_record").await;
    assert_eq!(
        (body["error"]["index"].as_u64(), body["error"]["field"].as_str()),
        (Some(2), Some("country"))
    );

    // A field of the wrong type is named the same way, found while parsing.
    let text = json(&batch[..2]).replacen("\"config_version\":1", "\"config_version\":\"one\"", 2);
    let request = signed_request(EXPOSURES_PATH, &tenant, now_seconds(), &text);
    let body = assert_refused(&harness, &tenant, request, StatusCode::BAD_REQUEST, "invalid_record").await;
    assert_eq!(
        (body["error"]["index"].as_u64(), body["error"]["field"].as_str()),
        (Some(0), Some("config_version"))
    );

    let events = vec![
        conversion(&tenant, "e1", "u1", "purchase", Some(1.0), at(0)),
        conversion(&tenant, "e2", "u1", "purchase", Some(1.0), 17),
    ];
    let request = signed_request(EVENTS_PATH, &tenant, now_seconds(), &json(&events));
    let body = assert_refused(&harness, &tenant, request, StatusCode::BAD_REQUEST, "invalid_record").await;
    assert_eq!(
        (body["error"]["index"].as_u64(), body["error"]["field"].as_str()),
        (Some(1), Some("timestamp"))
    );
}

#[tokio::test]
async fn a_tenant_over_its_rate_is_429_with_retry_after_and_others_still_pass() {
    let mut limits = RateLimits::uniform(1_000_000.0);
    let noisy = unique_tenant("noisy");
    let quiet = unique_tenant("quiet");
    limits.per_tenant.insert(
        noisy.clone(),
        Rate {
            records_per_second: 1.0,
            burst: 2.0,
        },
    );
    let harness = Harness::with_rate_limits(limits).await;
    let two = json(&vec![
        exposure(&noisy, "cta", "u1", "control"),
        exposure(&noisy, "cta", "u2", "control"),
    ]);
    let (status, _, _) = harness.post_signed(EXPOSURES_PATH, &noisy, now_seconds(), &two).await;
    assert_eq!(status, StatusCode::OK);

    let more = json(&vec![
        exposure(&noisy, "cta", "u3", "control"),
        exposure(&noisy, "cta", "u4", "control"),
    ]);
    let (status, headers, body) = harness.post_signed(EXPOSURES_PATH, &noisy, now_seconds(), &more).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"]["code"], "rate_limited");
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry_after), "Retry-After {retry_after}");
    assert_eq!(harness.counts(&noisy).await, (2, 0), "the limited batch wrote rows");

    let (status, _, _) = harness
        .post_signed(EXPOSURES_PATH, &quiet, now_seconds(), &one_exposure(&quiet))
        .await;
    assert_eq!(status, StatusCode::OK, "another tenant was starved");
    let (_, _, metrics) = harness.get("/metrics", None).await;
    let metrics = metrics.as_str().unwrap();
    assert!(
        metrics.contains(&format!("cohort_rate_limited_requests_total{{tenant=\"{noisy}\"}} 1\n")),
        "{metrics}"
    );
    assert!(
        metrics.contains("cohort_rejected_requests_total{reason=\"rate_limited\"} 1\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn readiness_needs_every_migration_applied() {
    let harness = Harness::new().await;
    let (status, _, body) = harness.get("/readyz", None).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, Some("ready\n")));

    // A database that lost a migration (restored from an old backup, say) is alive but not ready.
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/cohort.db", dir.path().display());
    let store = cohort_collector::Store::open(&url, cohort_collector::WriterOptions::default())
        .await
        .unwrap();
    assert_eq!(store.missing_migrations().await.unwrap(), Vec::<i64>::new());
    {
        use sqlx::Connection;
        let mut connection = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("DELETE FROM _sqlx_migrations WHERE version = 2")
            .execute(&mut connection)
            .await
            .unwrap();
    }
    assert_eq!(store.missing_migrations().await.unwrap(), vec![2]);
    store.close().await;
}

#[tokio::test]
async fn health_and_metrics_answer() {
    let harness = Harness::new().await;
    let tenant = unique_tenant("shop");
    let (status, _, body) = harness.get("/healthz", None).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, Some("ok\n")));
    harness
        .post_signed(EXPOSURES_PATH, &tenant, now_seconds(), &one_exposure(&tenant))
        .await;
    harness
        .post_signed(EXPOSURES_PATH, &tenant, now_seconds() - 3600, &one_exposure(&tenant))
        .await;
    let (status, _, metrics) = harness.get("/metrics", None).await;
    let metrics = metrics.as_str().unwrap();
    assert_eq!(status, StatusCode::OK);
    assert!(
        metrics.contains("cohort_ingested_records_total{kind=\"exposure\"} 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("cohort_rejected_requests_total{reason=\"expired_signature\"} 1\n"),
        "{metrics}"
    );
    assert!(metrics.contains("cohort_commit_latency_seconds_count 1\n"), "{metrics}");
    // The one stored batch went through each of the writer's phases once.
    for phase in ["queue", "statements", "commit"] {
        let count = format!("cohort_writer_phase_seconds_count{{phase=\"{phase}\"}} 1\n");
        assert!(metrics.contains(&count), "{count}{metrics}");
    }
}
