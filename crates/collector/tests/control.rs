//! The control plane through the collector's router: who may read and write configs, versions
//! and concurrent writers, validation, hostname ownership, lifecycle changes and unit moves,
//! history and rollback, and publishing through Cloudflare's KV REST API — against a local server
//! that answers the documented request and response shapes, on the same code path production
//! uses. Runs on SQLite, and on PostgreSQL when `COHORT_TEST_DATABASE_URL` names one.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{post, put};
use cohort_collector::control::edge_kv::{CloudflareKv, EdgeKv};
use common::{Harness, secret, unique_tenant};
use serde_json::{Value, json};

fn config(tenant: &str, version: u64, hostnames: &[&str]) -> Value {
    json!({
        "schema": 1, "tenant": tenant, "version": version, "hostnames": hostnames,
        "hash_key": "000102030405060708090a0b0c0d0e0f",
        "experiments": [
            {"key": "cta", "name": "Green button", "status": "running", "coverage": 2000,
             "variants": [{"key": "control", "weight": 5000}, {"key": "green", "weight": 5000}]},
            {"key": "hero", "status": "draft",
             "variants": [{"key": "a", "weight": 5000}, {"key": "b", "weight": 5000}]}
        ]
    })
}

fn host(tenant: &str, name: &str) -> String {
    format!("{name}.{tenant}.example")
}

fn admin(tenant: &str) -> String {
    secret().config_admin_token(tenant, "ana@example.com").unwrap()
}

async fn put_config(harness: &Harness, tenant: &str, token: &str, body: Value) -> (StatusCode, Value) {
    harness
        .send_json("PUT", &format!("/v1/tenants/{tenant}/config"), Some(token), &body)
        .await
}

async fn history(harness: &Harness, tenant: &str) -> Vec<Value> {
    let (status, _, body) = harness
        .get(
            &format!("/v1/tenants/{tenant}/config/history"),
            Some(&secret().results_read_token(tenant)),
        )
        .await;
    if status == StatusCode::NOT_FOUND {
        return Vec::new();
    }
    assert_eq!(status, StatusCode::OK, "{body}");
    body["versions"].as_array().unwrap().clone()
}

async fn first_version(harness: &Harness, tenant: &str) {
    let hosts = [host(tenant, "www")];
    let hosts: Vec<&str> = hosts.iter().map(String::as_str).collect();
    let (status, body) = put_config(
        harness,
        tenant,
        &admin(tenant),
        json!({"config": config(tenant, 3, &hosts)}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn tokens_decide_who_reads_and_who_writes_and_refusals_store_nothing() {
    let harness = Harness::new().await;
    let tenant = unique_tenant("tokens");
    let other = unique_tenant("other");
    first_version(&harness, &tenant).await;
    let uri = format!("/v1/tenants/{tenant}/config");
    let next = json!({"config": config(&tenant, 4, &[&host(&tenant, "www")])});

    let (status, body) = harness.send_json("PUT", &uri, None, &next).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("missing_token"))
    );
    let read = secret().results_read_token(&tenant);
    let (status, body) = put_config(&harness, &tenant, &read, next.clone()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    let (status, body) = put_config(&harness, &tenant, &admin(&other), next.clone()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("bad_token"))
    );
    let forged = format!("bob@example.com~{}", admin(&tenant).split('~').nth(1).unwrap());
    let (status, _) = put_config(&harness, &tenant, &forged, next.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(history(&harness, &tenant).await.len(), 1);

    // Reading takes either token, of this tenant only.
    let (status, _, body) = harness.get(&uri, Some(&read)).await;
    assert_eq!((status, body["version"].as_u64()), (StatusCode::OK, Some(3)));
    assert_eq!(body["config"]["tenant"], tenant.as_str());
    let (status, _, _) = harness.get(&uri, Some(&admin(&tenant))).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = harness.get(&uri, Some(&secret().results_read_token(&other))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn only_the_next_version_is_stored_and_one_of_two_concurrent_writers_wins() {
    let harness = Harness::new().await;
    let tenant = unique_tenant("versions");
    first_version(&harness, &tenant).await;
    let www = host(&tenant, "www");
    let token = admin(&tenant);

    for stale in [3, 5] {
        let (status, body) = put_config(
            &harness,
            &tenant,
            &token,
            json!({"config": config(&tenant, stale, &[&www])}),
        )
        .await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(body["error"]["code"], "version_conflict");
        assert_eq!(body["error"]["current_version"], 3);
    }

    let body = json!({"config": config(&tenant, 4, &[&www]), "comment": "racing"});
    let (first, second) = tokio::join!(
        put_config(&harness, &tenant, &token, body.clone()),
        put_config(&harness, &tenant, &token, body.clone())
    );
    let mut statuses = [first.0, second.0];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::CREATED, StatusCode::CONFLICT],
        "{first:?} {second:?}"
    );
    let loser = if first.0 == StatusCode::CONFLICT {
        first.1
    } else {
        second.1
    };
    assert_eq!(loser["error"]["current_version"], 4);
    assert_eq!(history(&harness, &tenant).await.len(), 2);
}

#[tokio::test]
async fn an_invalid_config_is_refused_with_its_path_and_changes_nothing() {
    let harness = Harness::new().await;
    let tenant = unique_tenant("invalid");
    first_version(&harness, &tenant).await;
    let token = admin(&tenant);
    let mut bad = config(&tenant, 4, &[&host(&tenant, "www")]);
    bad["experiments"][0]["variants"][1]["weight"] = json!(4000);
    let (status, body) = put_config(&harness, &tenant, &token, json!({"config": bad})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "invalid_config");
    assert_eq!(body["error"]["field"], "experiments[0].variants");
    assert_eq!(
        body["error"]["message"],
        "experiments[0].variants: weights sum to 9000, expected 10000"
    );

    // A selector the engine's shape check passes but the edge's HTML rewriter refuses.
    let mut hover = config(&tenant, 4, &[&host(&tenant, "www")]);
    hover["experiments"][0]["variants"][1]["actions"] = json!([{"type": "remove", "selector": "a:hover"}]);
    let (status, body) = put_config(&harness, &tenant, &token, json!({"config": hover})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["field"], "experiments[0].variants[1].actions[0].selector");

    let other_tenant = config("someone-else", 4, &[&host(&tenant, "www")]);
    let (status, body) = put_config(&harness, &tenant, &token, json!({"config": other_tenant})).await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("tenant"))
    );

    let (status, body) = put_config(
        &harness,
        &tenant,
        &token,
        json!({"config": config(&tenant, 4, &[]), "typo": 1}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("malformed_json"))
    );
    assert_eq!(history(&harness, &tenant).await.len(), 1);
}

#[tokio::test]
async fn a_hostname_belongs_to_one_tenant_until_a_live_version_releases_it() {
    let harness = Harness::new().await;
    let owner = unique_tenant("owner");
    let claimant = unique_tenant("claimant");
    first_version(&harness, &owner).await;
    let taken = host(&owner, "www");
    let (status, body) = put_config(
        &harness,
        &claimant,
        &admin(&claimant),
        json!({"config": config(&claimant, 1, &[&taken])}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "hostname_claimed");
    assert!(history(&harness, &claimant).await.is_empty());

    // The owner drops it, but this collector publishes nowhere: the version is not live, the edge
    // may still route the hostname to the owner, so the claim holds.
    let (status, body) = put_config(
        &harness,
        &owner,
        &admin(&owner),
        json!({"config": config(&owner, 4, &[&host(&owner, "shop")])}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["live"], false);
    assert!(
        body["publish_error"]
            .as_str()
            .unwrap()
            .contains("publishes to no edge KV")
    );
    let (_, _, latest) = harness
        .get(&format!("/v1/tenants/{owner}/config"), Some(&admin(&owner)))
        .await;
    assert_eq!(latest["live"], false);
    assert!(
        latest["publish_error"]
            .as_str()
            .unwrap()
            .contains("publishes to no edge KV"),
        "{latest}"
    );
    let (status, _) = put_config(
        &harness,
        &claimant,
        &admin(&claimant),
        json!({"config": config(&claimant, 1, &[&taken])}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn lifecycle_changes_make_versions_and_unit_moves_need_force() {
    let harness = Harness::new().await;
    let tenant = unique_tenant("lifecycle");
    first_version(&harness, &tenant).await;
    let token = admin(&tenant);
    let cta = format!("/v1/tenants/{tenant}/experiments/cta/lifecycle");
    let change = |body: Value| {
        let (harness, cta, token) = (&harness, &cta, &token);
        async move { harness.send_json("POST", cta, Some(token), &body).await }
    };

    // A dry run answers the diff and stores nothing.
    let (status, body) = change(json!({"action": "ramp", "coverage": 5000, "dry_run": true})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["stored"].as_bool(), body["version"].as_u64()),
        (Some(false), Some(4))
    );
    assert_eq!(history(&harness, &tenant).await.len(), 1);

    let (status, body) = change(json!({"action": "ramp", "coverage": 5000, "comment": "ramp to half"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        body["diff"]["experiments"][0]["coverage"],
        json!({"from": 2000, "to": 5000})
    );
    assert_eq!(body["moves_units"], json!([]));

    for (request, reason) in [
        (
            json!({"action": "ramp", "coverage": 1000}),
            "lowering coverage drops units",
        ),
        (
            json!({"action": "weights", "weights": {"control": 2000, "green": 8000}}),
            "changing weights",
        ),
    ] {
        let (status, body) = change(request.clone()).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(body["error"]["code"], "moves_units");
        assert!(body["error"]["message"].as_str().unwrap().contains(reason), "{body}");
    }
    assert_eq!(history(&harness, &tenant).await.len(), 2);
    let (status, body) = change(json!({"action": "ramp", "coverage": 1000, "force": true})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        body["moves_units"][0],
        "experiment `cta`: lowering coverage drops units from the experiment"
    );

    let (status, body) = harness
        .send_json(
            "POST",
            &format!("/v1/tenants/{tenant}/experiments/hero/lifecycle"),
            Some(&token),
            &json!({"action": "pause"}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("invalid_transition"))
    );
    let (status, body) = change(json!({"action": "stop", "winner": "green"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["config"]["experiments"][0]["status"], "stopped");
    assert_eq!(body["config"]["experiments"][0]["winner"], "green");
    assert_eq!(history(&harness, &tenant).await.len(), 4);
}

#[tokio::test]
async fn history_shows_authors_comments_and_diffs_and_rollback_restores_a_version() {
    let harness = Harness::new().await;
    let tenant = unique_tenant("history");
    first_version(&harness, &tenant).await;
    let cta = format!("/v1/tenants/{tenant}/experiments/cta/lifecycle");
    let bob = secret().config_admin_token(&tenant, "bob").unwrap();
    let (status, _) = harness
        .send_json(
            "POST",
            &cta,
            Some(&bob),
            &json!({"action": "ramp", "coverage": 8000, "comment": "more traffic"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    let versions = history(&harness, &tenant).await;
    assert_eq!(versions.len(), 2);
    assert_eq!(
        (
            versions[0]["version"].as_u64(),
            versions[0]["author"].as_str(),
            versions[0]["comment"].as_str()
        ),
        (Some(4), Some("bob"), Some("more traffic"))
    );
    assert_eq!(versions[0]["diff"]["experiments"][0]["key"], "cta");
    assert_eq!(versions[1]["author"], "ana@example.com");
    assert!(versions[1].get("diff").is_none());

    let (status, body) = harness
        .send_json(
            "POST",
            &format!("/v1/tenants/{tenant}/config/rollback"),
            Some(&admin(&tenant)),
            &json!({"to": 3}),
        )
        .await;
    // Going back from 8000 to 2000 lowers coverage: it moves units, so it too needs force.
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("moves_units"))
    );
    let (status, body) = harness
        .send_json(
            "POST",
            &format!("/v1/tenants/{tenant}/config/rollback"),
            Some(&admin(&tenant)),
            &json!({"to": 3, "force": true}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["version"], 5);
    let (_, _, restored) = harness
        .get(
            &format!("/v1/tenants/{tenant}/config/versions/5"),
            Some(&admin(&tenant)),
        )
        .await;
    let (_, _, original) = harness
        .get(
            &format!("/v1/tenants/{tenant}/config/versions/3"),
            Some(&admin(&tenant)),
        )
        .await;
    let mut expected = original["config"].clone();
    expected["version"] = json!(5);
    assert_eq!(restored["config"], expected);
    assert_eq!(restored["comment"], "rollback to version 3");
    let (status, body) = harness
        .send_json(
            "POST",
            &format!("/v1/tenants/{tenant}/config/rollback"),
            Some(&admin(&tenant)),
            &json!({"to": 99}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
}

/// A local stand-in for Cloudflare's KV bulk endpoints, with the documented shapes: `PUT …/bulk`
/// takes `[{"key", "value"}]`, `POST …/bulk/delete` takes `["key"]`, both answer
/// `{"success", "errors", "messages", "result": {"successful_key_count", "unsuccessful_keys"}}`.
#[derive(Default)]
struct FakeKv {
    values: BTreeMap<String, String>,
    calls: Vec<String>,
    fail_next_put: bool,
}

type SharedKv = Arc<Mutex<FakeKv>>;

const ACCOUNT: &str = "0123456789abcdef0123456789abcdef";
const NAMESPACE: &str = "fedcba9876543210fedcba9876543210";
const API_TOKEN: &str = "kv-api-token";

fn cloudflare_answer(status: StatusCode, success: bool, keys: usize) -> (StatusCode, axum::Json<Value>) {
    let errors = if success {
        json!([])
    } else {
        json!([{"code": 10001, "message": "service temporarily unavailable"}])
    };
    (
        status,
        axum::Json(json!({"success": success, "errors": errors, "messages": [],
            "result": {"successful_key_count": keys, "unsuccessful_keys": []}})),
    )
}

fn authorised(headers: &HeaderMap, account: &str, namespace: &str) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {API_TOKEN}"))
        && account == ACCOUNT
        && namespace == NAMESPACE
}

async fn bulk_put(
    State(kv): State<SharedKv>,
    Path((account, namespace)): Path<(String, String)>,
    headers: HeaderMap,
    axum::Json(entries): axum::Json<Vec<BTreeMap<String, String>>>,
) -> (StatusCode, axum::Json<Value>) {
    if !authorised(&headers, &account, &namespace) {
        return cloudflare_answer(StatusCode::UNAUTHORIZED, false, 0);
    }
    let mut kv = kv.lock().unwrap();
    if std::mem::take(&mut kv.fail_next_put) {
        kv.calls.push("put failed".into());
        return cloudflare_answer(StatusCode::INTERNAL_SERVER_ERROR, false, 0);
    }
    let keys: Vec<String> = entries.iter().map(|e| e["key"].clone()).collect();
    kv.calls.push(format!("put {}", keys.join(" ")));
    for entry in &entries {
        kv.values.insert(entry["key"].clone(), entry["value"].clone());
    }
    cloudflare_answer(StatusCode::OK, true, entries.len())
}

async fn bulk_delete(
    State(kv): State<SharedKv>,
    Path((account, namespace)): Path<(String, String)>,
    headers: HeaderMap,
    axum::Json(keys): axum::Json<Vec<String>>,
) -> (StatusCode, axum::Json<Value>) {
    if !authorised(&headers, &account, &namespace) {
        return cloudflare_answer(StatusCode::UNAUTHORIZED, false, 0);
    }
    let mut kv = kv.lock().unwrap();
    kv.calls.push(format!("delete {}", keys.join(" ")));
    for key in &keys {
        kv.values.remove(key);
    }
    cloudflare_answer(StatusCode::OK, true, keys.len())
}

async fn fake_cloudflare() -> (SharedKv, String) {
    let kv = SharedKv::default();
    let app = Router::new()
        .route(
            "/client/v4/accounts/{account}/storage/kv/namespaces/{namespace}/bulk",
            put(bulk_put),
        )
        .route(
            "/client/v4/accounts/{account}/storage/kv/namespaces/{namespace}/bulk/delete",
            post(bulk_delete),
        )
        .with_state(kv.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (kv, format!("http://{address}/client/v4"))
}

fn cloudflare(api_base: &str, api_token: &str) -> EdgeKv {
    EdgeKv::Cloudflare(CloudflareKv {
        api_base: api_base.to_owned(),
        account_id: ACCOUNT.to_owned(),
        namespace_id: NAMESPACE.to_owned(),
        api_token: api_token.to_owned(),
    })
}

/// Every `host:` key names a tenant whose stored `tenant:` config claims that host.
fn no_host_routes_to_a_tenant_that_does_not_claim_it(kv: &FakeKv) {
    for (key, tenant) in &kv.values {
        let Some(hostname) = key.strip_prefix("host:") else {
            continue;
        };
        let config: Value = serde_json::from_str(&kv.values[&format!("tenant:{tenant}")]).unwrap();
        assert!(
            config["hostnames"].as_array().unwrap().iter().any(|h| h == hostname),
            "{key} → {tenant}, whose config lists {}",
            config["hostnames"]
        );
    }
}

#[tokio::test]
async fn versions_are_published_through_cloudflares_rest_api() {
    let (kv, api_base) = fake_cloudflare().await;
    let harness = Harness::publishing_to(cloudflare(&api_base, API_TOKEN)).await;
    let tenant = unique_tenant("publish");
    first_version(&harness, &tenant).await;
    let (_, _, latest) = harness
        .get(&format!("/v1/tenants/{tenant}/config"), Some(&admin(&tenant)))
        .await;
    assert_eq!(latest["live"], true, "{latest}");
    let kv = kv.lock().unwrap();
    let stored: Value = serde_json::from_str(&kv.values[&format!("tenant:{tenant}")]).unwrap();
    assert_eq!(stored, latest["config"]);
    assert_eq!(kv.values[&format!("host:{}", host(&tenant, "www"))], tenant);
    assert_eq!(kv.calls.len(), 1);
}

#[tokio::test]
async fn a_refused_api_token_leaves_the_version_stored_and_not_yet_live() {
    let (kv, api_base) = fake_cloudflare().await;
    let harness = Harness::publishing_to(cloudflare(&api_base, "wrong-token")).await;
    let tenant = unique_tenant("refused");
    first_version(&harness, &tenant).await;
    let (_, _, latest) = harness
        .get(&format!("/v1/tenants/{tenant}/config"), Some(&admin(&tenant)))
        .await;
    assert_eq!(
        (latest["live"].as_bool(), latest["publish_attempts"].as_u64()),
        (Some(false), Some(1))
    );
    assert!(latest["publish_error"].as_str().unwrap().contains("401"), "{latest}");
    assert!(kv.lock().unwrap().values.is_empty());
}

#[tokio::test]
async fn a_publish_that_fails_half_way_is_completed_on_retry_and_never_routes_a_host_wrongly() {
    let (kv, api_base) = fake_cloudflare().await;
    let harness = Harness::publishing_to(cloudflare(&api_base, API_TOKEN)).await;
    let tenant = unique_tenant("halfway");
    let token = admin(&tenant);
    let [kept, dropped, added] = ["www", "old", "new"].map(|name| host(&tenant, name));
    let (status, _) = put_config(
        &harness,
        &tenant,
        &token,
        json!({"config": config(&tenant, 1, &[&kept, &dropped])}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);

    // Version 2 drops one hostname and adds another. The delete of the dropped host's key
    // succeeds, then the bulk write fails.
    kv.lock().unwrap().fail_next_put = true;
    let (status, body) = put_config(
        &harness,
        &tenant,
        &token,
        json!({"config": config(&tenant, 2, &[&kept, &added])}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["live"], false);
    assert!(body["publish_error"].as_str().unwrap().contains("HTTP 500"), "{body}");
    {
        let kv = kv.lock().unwrap();
        assert_eq!(
            kv.calls[1..],
            [format!("delete host:{dropped}"), "put failed".to_owned()]
        );
        // In between: the dropped host is unrouted (its visitors get the origin), the new one not
        // yet routed, and nothing points at a config that does not claim it.
        assert!(!kv.values.contains_key(&format!("host:{dropped}")));
        assert!(!kv.values.contains_key(&format!("host:{added}")));
        no_host_routes_to_a_tenant_that_does_not_claim_it(&kv);
    }
    // The dropped hostname stays claimed until version 2 is live.
    let other = unique_tenant("taker");
    let (status, _) = put_config(
        &harness,
        &other,
        &admin(&other),
        json!({"config": config(&other, 1, &[&dropped])}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);

    let (status, _, answer) = harness
        .send(
            axum::http::Request::post(format!("/v1/tenants/{tenant}/config/publish"))
                .header("authorization", format!("Bearer {token}"))
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(
        (status, answer["live"].as_bool(), answer["version"].as_u64()),
        (StatusCode::OK, Some(true), Some(2))
    );
    {
        let kv = kv.lock().unwrap();
        let live: Value = serde_json::from_str(&kv.values[&format!("tenant:{tenant}")]).unwrap();
        assert_eq!(live["version"], 2);
        assert_eq!(kv.values[&format!("host:{added}")], tenant);
        assert!(!kv.values.contains_key(&format!("host:{dropped}")));
        no_host_routes_to_a_tenant_that_does_not_claim_it(&kv);
    }
    let (_, _, latest) = harness.get(&format!("/v1/tenants/{tenant}/config"), Some(&token)).await;
    assert_eq!(
        (latest["live"].as_bool(), latest["publish_attempts"].as_u64()),
        (Some(true), Some(2))
    );
    assert!(latest.get("publish_error").is_none());
    // Now another tenant may take the released hostname.
    let (status, body) = put_config(
        &harness,
        &other,
        &admin(&other),
        json!({"config": config(&other, 1, &[&dropped])}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn results_expect_the_split_of_the_version_that_assigned_each_unit() {
    let harness = Harness::new().await;
    let tenant = unique_tenant("mixed");
    first_version(&harness, &tenant).await;
    let (status, body) = harness
        .send_json(
            "POST",
            &format!("/v1/tenants/{tenant}/experiments/cta/lifecycle"),
            Some(&admin(&tenant)),
            &json!({"action": "weights", "weights": {"control": 2000, "green": 8000}, "force": true}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Version 3 assigned 100 + 100 units at 50/50, version 4 then 20 + 80 at 20/80: together
    // 120 control of 300 is exactly the mix, which the latest weights alone would call a mismatch.
    let mut records = Vec::new();
    for (version, variant, units) in [
        (3, "control", 100),
        (3, "green", 100),
        (4, "control", 20),
        (4, "green", 80),
    ] {
        for i in 0..units {
            let unit = format!("{version}-{variant}-{i}");
            records.push(cohort_core::Exposure::new(
                &tenant,
                "cta",
                variant,
                &unit,
                version,
                common::at(0),
            ));
        }
    }
    for chunk in records.chunks(500) {
        let (status, _, body) = harness
            .post_signed(
                cohort_core::beacon::EXPOSURES_PATH,
                &tenant,
                common::now_seconds(),
                &common::json(chunk),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, _, results) = harness
        .get(
            &format!("/v1/tenants/{tenant}/experiments/cta/results"),
            Some(&secret().results_read_token(&tenant)),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{results}");
    assert_eq!(results["sample_ratio"]["expected_split"], "config_versions");
    let control = &results["variants"][0];
    assert_eq!(control["variant"], "control");
    assert!(
        (control["expected_share"].as_f64().unwrap() - 0.4).abs() < 1e-12,
        "{control}"
    );
    assert_eq!(
        results["sample_ratio"]["mismatch"], false,
        "{}",
        results["sample_ratio"]
    );
    // The scheduled monitor expects the same mix, so it raises no alarm either.
    let check = cohort_collector::srm_monitor::run_check(&harness.state).await.unwrap();
    assert!(
        !check.mismatches.contains(&(tenant.clone(), "cta".to_owned())),
        "{:?}",
        check.mismatches
    );
}

#[tokio::test]
async fn stopping_first_does_not_bypass_the_unit_move_check() {
    let harness = Harness::new().await;
    let tenant = unique_tenant("bypass");
    first_version(&harness, &tenant).await;
    let token = admin(&tenant);
    let (status, _) = harness
        .send_json(
            "POST",
            &format!("/v1/tenants/{tenant}/experiments/cta/lifecycle"),
            Some(&token),
            &json!({"action": "stop"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    // Restarting with the variants swapped: units that kept their sticky entry while it was
    // stopped would get the other variant.
    let mut swapped = config(&tenant, 5, &[&host(&tenant, "www")]);
    let variants = swapped["experiments"][0]["variants"].as_array_mut().unwrap();
    variants.swap(0, 1);
    let (status, body) = put_config(&harness, &tenant, &token, json!({"config": swapped.clone()})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("moves_units")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("(since version 3, when it last ran)"),
        "{body}"
    );
    let (status, _) = put_config(&harness, &tenant, &token, json!({"config": swapped, "force": true})).await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn dry_runs_check_hostnames_and_versions_stay_within_exact_json_integers() {
    let harness = Harness::new().await;
    let owner = unique_tenant("owner");
    let other = unique_tenant("other");
    first_version(&harness, &owner).await;
    let taken = host(&owner, "www");
    let (status, body) = put_config(
        &harness,
        &other,
        &admin(&other),
        json!({"config": config(&other, 1, &[&taken]), "dry_run": true}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("hostname_claimed"))
    );
    let (status, body) = put_config(
        &harness,
        &other,
        &admin(&other),
        json!({"config": config(&other, 1u64 << 53, &[&host(&other, "www")])}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("version")),
        "{body}"
    );
    assert!(history(&harness, &other).await.is_empty());
}

#[tokio::test]
async fn marking_an_older_version_live_keeps_the_claims_of_the_latest() {
    let harness = Harness::new().await;
    let tenant = unique_tenant("claims");
    let token = admin(&tenant);
    let [kept, toggled] = ["www", "old"].map(|name| host(&tenant, name));
    for (version, hosts) in [(1, vec![&kept, &toggled]), (2, vec![&kept]), (3, vec![&kept, &toggled])] {
        let hosts: Vec<&str> = hosts.iter().map(|h| h.as_str()).collect();
        let (status, body) = put_config(
            &harness,
            &tenant,
            &token,
            json!({"config": config(&tenant, version, &hosts)}),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    // A publisher that wrote version 2 marks it live after version 3, which lists the hostname
    // again, was stored: the claim stays.
    harness.state.store.mark_published(&tenant, 2, 1).await.unwrap();
    let claims = harness.state.store.hostname_claims(&tenant).await.unwrap();
    assert!(claims.contains(&toggled), "{claims:?}");
    let other = unique_tenant("taker");
    let (status, _) = put_config(
        &harness,
        &other,
        &admin(&other),
        json!({"config": config(&other, 1, &[&toggled])}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
}

/// What the publisher's retry loop and the history's diffs read from the store: the latest version
/// of every tenant, and the version right before a given one; and a closed store no longer
/// answers the readiness probe.
#[tokio::test]
async fn the_store_answers_latest_versions_previous_versions_and_readiness() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/cohort.db", dir.path().display());
    let store = cohort_collector::Store::open(&url, cohort_collector::WriterOptions::default())
        .await
        .unwrap();
    store.ping().await.unwrap();
    // Interleaved, and with a gap: `b` has 1, 2 and 5.
    for (tenant, version) in [("b", 1), ("a", 1), ("b", 2), ("a", 2), ("b", 5)] {
        let document = config(tenant, version, &[&host(tenant, "www")]).to_string();
        store
            .store_config_version(&cohort_collector::store::NewVersion {
                tenant,
                version,
                document: &document,
                hostnames: &[host(tenant, "www")],
                author: "test",
                comment: "",
                created_at_ms: 1_700_000_000_000 + version as i64,
            })
            .await
            .unwrap();
    }
    let latest: Vec<(String, u64)> = store
        .latest_configs()
        .await
        .unwrap()
        .into_iter()
        .map(|v| (v.tenant, v.version))
        .collect();
    assert_eq!(latest, [("a".to_owned(), 2), ("b".to_owned(), 5)]);
    let previous = |tenant: &'static str, version: u64| {
        let store = &store;
        async move {
            store
                .previous_config_version(tenant, version)
                .await
                .unwrap()
                .map(|v| v.version)
        }
    };
    assert_eq!(previous("b", 5).await, Some(2));
    assert_eq!(previous("b", 2).await, Some(1));
    assert_eq!(previous("b", 1).await, None);
    assert_eq!(previous("a", 9).await, Some(2));
    store.close().await;
    assert!(
        store.ping().await.is_err(),
        "a closed store must fail the readiness probe"
    );
}
