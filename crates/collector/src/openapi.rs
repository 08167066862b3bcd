//! The collector's HTTP API as one table: each operation's method, path, handler, parameters,
//! body and answers. [`crate::router`] mounts the handlers from it and [`document`] writes the
//! OpenAPI 3.1 description from it (`cohort openapi`, committed as
//! `schemas/collector-openapi.json`), so the description cannot list a route the collector does
//! not serve or miss one it does. Body and answer schemas are derived from the Rust types
//! (schemars, JSON Schema 2020-12, which OpenAPI 3.1 uses as is): answers as the types serialise
//! (a field skipped when empty is optional), request bodies as they deserialise (a field with a
//! default is optional). A type whose two shapes differ appears twice, the request's named
//! `…Input`.

use axum::routing::MethodRouter;
use cohort_core::beacon::{EVENTS_PATH, EXPOSURES_PATH};
use cohort_core::wire::ErrorDetail;
use schemars::generate::{Contract, SchemaGenerator, SchemaSettings};
use schemars::{JsonSchema, Schema};
use serde_json::{Map, Value, json};

use crate::app::{self, AppState};
use crate::{control, experiments, ingest, results};

/// Who may call an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Anyone (probes).
    Open,
    /// An edge worker: the batch signed with the tenant's beacon key.
    BeaconSignature,
    /// The tenant's read or admin token.
    ReadToken,
    /// The tenant's admin token.
    AdminToken,
    /// `COHORT_METRICS_TOKEN`, when the operator sets one.
    MetricsToken,
}

/// A query parameter.
pub(crate) struct QueryParam {
    name: &'static str,
    description: &'static str,
    /// Its JSON Schema, as JSON text.
    schema: &'static str,
}

/// What a successful call answers.
pub(crate) enum Answer {
    /// JSON of this type, with this status.
    Json(u16, fn(&mut SchemaGenerator) -> Schema),
    /// Plain text.
    Text(&'static str),
}

/// One operation of the API.
pub(crate) struct Operation {
    pub(crate) method: &'static str,
    pub(crate) path: &'static str,
    id: &'static str,
    tag: &'static str,
    summary: &'static str,
    access: Access,
    query: &'static [QueryParam],
    body: Option<fn(&mut SchemaGenerator) -> Schema>,
    answers: &'static [Answer],
    /// Error statuses besides those every operation of its access can answer.
    errors: &'static [u16],
    /// Adds the handler to the route's method router.
    pub(crate) mount: fn(MethodRouter<AppState>) -> MethodRouter<AppState>,
}

fn schema<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

const RESULTS_QUERY: &[QueryParam] = &[
    QueryParam {
        name: "weights",
        description: "Expected split, `variant:weight` comma-separated; the first is the control. Default: the stored config's weights.",
        schema: r#"{"type": "string", "examples": ["control:5000,green:5000"]}"#,
    },
    QueryParam {
        name: "control",
        description: "The variant lifts are measured against.",
        schema: r#"{"type": "string"}"#,
    },
    QueryParam {
        name: "inference",
        description: "Always-valid sequential intervals (the default) or fixed-horizon ones.",
        schema: r#"{"enum": ["sequential", "fixed"]}"#,
    },
    QueryParam {
        name: "adjustment",
        description: "Multiple-comparison adjustment of the p-values.",
        schema: r#"{"enum": ["holm", "benjamini_hochberg"]}"#,
    },
    QueryParam {
        name: "config_version",
        description: "Only units first exposed under this config version.",
        schema: r#"{"type": "integer", "minimum": 1}"#,
    },
    QueryParam {
        name: "country",
        description: "Only units first exposed in this country (two uppercase letters).",
        schema: r#"{"type": "string", "pattern": "^[A-Z]{2}$"}"#,
    },
    QueryParam {
        name: "device",
        description: "Only units first exposed on this device class.",
        schema: r#"{"enum": ["desktop", "mobile", "tablet", "other"]}"#,
    },
    QueryParam {
        name: "from",
        description: "Only units first exposed at or after this time, Unix milliseconds.",
        schema: r#"{"type": "integer"}"#,
    },
    QueryParam {
        name: "to",
        description: "Only units first exposed before this time, Unix milliseconds.",
        schema: r#"{"type": "integer"}"#,
    },
];

/// Every operation, in the order the description lists them.
pub(crate) const OPERATIONS: &[Operation] = &[
    Operation {
        method: "post",
        path: EXPOSURES_PATH,
        id: "postExposures",
        tag: "ingest",
        summary: "Store a signed batch of exposures (up to 1,000); answered only after it committed",
        access: Access::BeaconSignature,
        query: &[],
        body: Some(schema::<Vec<cohort_core::Exposure>>),
        answers: &[Answer::Json(200, schema::<ingest::Accepted>)],
        errors: &[400, 413, 429, 503],
        mount: |route| route.post(ingest::exposures),
    },
    Operation {
        method: "post",
        path: EVENTS_PATH,
        id: "postEvents",
        tag: "ingest",
        summary: "Store a signed batch of conversions (up to 1,000); answered only after it committed",
        access: Access::BeaconSignature,
        query: &[],
        body: Some(schema::<Vec<cohort_core::Conversion>>),
        answers: &[Answer::Json(200, schema::<ingest::Accepted>)],
        errors: &[400, 413, 429, 503],
        mount: |route| route.post(ingest::events),
    },
    Operation {
        method: "get",
        path: "/v1/tenants/{tenant}/experiments",
        id: "listExperiments",
        tag: "results",
        summary: "The tenant's experiments: configured and seen in exposures, with units per variant",
        access: Access::ReadToken,
        query: &[],
        body: None,
        answers: &[Answer::Json(200, schema::<experiments::ExperimentList>)],
        errors: &[503],
        mount: |route| route.get(experiments::experiments),
    },
    Operation {
        method: "get",
        path: "/v1/tenants/{tenant}/experiments/{experiment}/results",
        id: "getResults",
        tag: "results",
        summary: "An experiment's results: units, metrics, lifts with intervals and p-values, sample-ratio test",
        access: Access::ReadToken,
        query: RESULTS_QUERY,
        body: None,
        answers: &[Answer::Json(200, schema::<results::ExperimentResults>)],
        errors: &[400, 503],
        mount: |route| route.get(results::results),
    },
    Operation {
        method: "get",
        path: "/v1/tenants/{tenant}/experiments/{experiment}/timeline",
        id: "getTimeline",
        tag: "results",
        summary: "First exposures per time bucket and variant",
        access: Access::ReadToken,
        query: &[QueryParam {
            name: "bucket_seconds",
            description: "Bucket width; chosen from the experiment's span when absent.",
            schema: r#"{"type": "integer", "minimum": 1, "maximum": 86400}"#,
        }],
        body: None,
        answers: &[Answer::Json(200, schema::<experiments::Timeline>)],
        errors: &[400, 503],
        mount: |route| route.get(experiments::timeline),
    },
    Operation {
        method: "get",
        path: "/v1/tenants/{tenant}/config",
        id: "getConfig",
        tag: "config",
        summary: "The latest config version, live or not, with its document",
        access: Access::ReadToken,
        query: &[],
        body: None,
        answers: &[Answer::Json(200, schema::<control::VersionAnswer>)],
        errors: &[404, 503],
        mount: |route| route.get(control::get_config),
    },
    Operation {
        method: "put",
        path: "/v1/tenants/{tenant}/config",
        id: "putConfig",
        tag: "config",
        summary: "Store a whole config as the next version and publish it (200 with `dry_run`)",
        access: Access::AdminToken,
        query: &[],
        body: Some(schema::<control::PutConfigRequest>),
        answers: &[
            Answer::Json(201, schema::<control::ChangeAnswer>),
            Answer::Json(200, schema::<control::ChangeAnswer>),
        ],
        errors: &[400, 409, 503],
        mount: |route| route.put(control::put_config),
    },
    Operation {
        method: "get",
        path: "/v1/tenants/{tenant}/config/history",
        id: "getConfigHistory",
        tag: "config",
        summary: "Config versions newest first, each with author, time, comment, live state and diff",
        access: Access::ReadToken,
        query: &[QueryParam {
            name: "limit",
            description: "Most versions to list (default and maximum 500).",
            schema: r#"{"type": "integer", "minimum": 1, "maximum": 500}"#,
        }],
        body: None,
        answers: &[Answer::Json(200, schema::<control::HistoryAnswer>)],
        errors: &[400, 503],
        mount: |route| route.get(control::history),
    },
    Operation {
        method: "get",
        path: "/v1/tenants/{tenant}/config/versions/{version}",
        id: "getConfigVersion",
        tag: "config",
        summary: "One config version with its document",
        access: Access::ReadToken,
        query: &[],
        body: None,
        answers: &[Answer::Json(200, schema::<control::VersionAnswer>)],
        errors: &[400, 404, 503],
        mount: |route| route.get(control::get_version),
    },
    Operation {
        method: "post",
        path: "/v1/tenants/{tenant}/config/rollback",
        id: "rollbackConfig",
        tag: "config",
        summary: "Store an earlier version's content as the next version (200 with `dry_run`)",
        access: Access::AdminToken,
        query: &[],
        body: Some(schema::<control::RollbackRequest>),
        answers: &[
            Answer::Json(201, schema::<control::ChangeAnswer>),
            Answer::Json(200, schema::<control::ChangeAnswer>),
        ],
        errors: &[400, 404, 409, 503],
        mount: |route| route.post(control::rollback),
    },
    Operation {
        method: "post",
        path: "/v1/tenants/{tenant}/config/publish",
        id: "publishConfig",
        tag: "config",
        summary: "Publish the latest version to the edge now, if it is not live",
        access: Access::AdminToken,
        query: &[],
        body: None,
        answers: &[Answer::Json(200, schema::<control::PublishAnswer>)],
        errors: &[404, 503],
        mount: |route| route.post(control::publish),
    },
    Operation {
        method: "post",
        path: "/v1/tenants/{tenant}/experiments/{experiment}/lifecycle",
        id: "changeLifecycle",
        tag: "config",
        summary: "Start, pause, stop, ramp or reweight one experiment as a new config version",
        access: Access::AdminToken,
        query: &[],
        body: Some(schema::<control::lifecycle::LifecycleRequest>),
        answers: &[
            Answer::Json(201, schema::<control::ChangeAnswer>),
            Answer::Json(200, schema::<control::ChangeAnswer>),
        ],
        errors: &[400, 404, 409, 503],
        mount: |route| route.post(control::lifecycle),
    },
    Operation {
        method: "get",
        path: "/healthz",
        id: "liveness",
        tag: "operations",
        summary: "Liveness: the database answers",
        access: Access::Open,
        query: &[],
        body: None,
        answers: &[Answer::Text("ok")],
        errors: &[503],
        mount: |route| route.get(app::healthz),
    },
    Operation {
        method: "get",
        path: "/readyz",
        id: "readiness",
        tag: "operations",
        summary: "Readiness: the database answers and holds every migration this build needs",
        access: Access::Open,
        query: &[],
        body: None,
        answers: &[Answer::Text("ready")],
        errors: &[503],
        mount: |route| route.get(app::readyz),
    },
    Operation {
        method: "get",
        path: "/metrics",
        id: "metrics",
        tag: "operations",
        summary: "Prometheus metrics in the text exposition format",
        access: Access::MetricsToken,
        query: &[],
        body: None,
        answers: &[Answer::Text("Prometheus text exposition format 0.0.4")],
        errors: &[],
        mount: |route| route.get(app::metrics),
    },
];

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created: the version is stored",
        400 => "The request is malformed or invalid (`error.code` says which check)",
        401 => "Missing, malformed or wrong credentials",
        403 => "The token may read but not write",
        404 => "No such tenant config, version or experiment",
        409 => "A version conflict, a claimed hostname, or a change that moves assigned units without `force`",
        413 => "Body or batch over its limit",
        429 => "The tenant is over its ingest rate; `Retry-After` says when to come back",
        503 => "The database is unavailable, or the request took longer than the timeout",
        _ => "See `error.code`",
    }
}

fn error_answer() -> Value {
    json!({"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}})
}

fn path_parameter(name: &str) -> Value {
    let (description, schema) = match name {
        "tenant" => ("Tenant id", json!({"type": "string"})),
        "experiment" => ("Experiment key", json!({"type": "string"})),
        "version" => ("Config version", json!({"type": "integer", "minimum": 1})),
        other => unreachable!("path parameter {other} has no description"),
    };
    json!({"name": name, "in": "path", "required": true, "description": description, "schema": schema})
}

/// The operation's description; `body` is its request body's schema, from the input generator.
fn operation_object(operation: &Operation, generator: &mut SchemaGenerator, body: Option<Value>) -> Value {
    let mut parameters: Vec<Value> = operation
        .path
        .split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(path_parameter)
        .collect();
    for param in operation.query {
        let schema: Value = serde_json::from_str(param.schema).expect("query parameter schemas are JSON");
        parameters.push(json!({"name": param.name, "in": "query", "required": false,
                               "description": param.description, "schema": schema}));
    }
    let mut responses = Map::new();
    for answer in operation.answers {
        let (status, content) = match answer {
            Answer::Json(status, schema) => (*status, json!({"application/json": {"schema": schema(generator)}})),
            Answer::Text(example) => (
                200,
                json!({"text/plain": {"schema": {"type": "string"}, "example": example}}),
            ),
        };
        responses.insert(
            status.to_string(),
            json!({"description": reason(status), "content": content}),
        );
    }
    let mut errors: Vec<u16> = operation.errors.to_vec();
    match operation.access {
        Access::Open => {}
        Access::BeaconSignature | Access::ReadToken | Access::MetricsToken => errors.push(401),
        Access::AdminToken => errors.extend([401, 403]),
    }
    errors.sort_unstable();
    errors.dedup();
    for status in errors {
        let mut answer = error_answer();
        answer["description"] = reason(status).into();
        responses.insert(status.to_string(), answer);
    }
    let mut object = json!({
        "operationId": operation.id,
        "tags": [operation.tag],
        "summary": operation.summary,
        "responses": responses,
    });
    if !parameters.is_empty() {
        object["parameters"] = parameters.into();
    }
    if let Some(body) = body {
        object["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": body}}});
    }
    let security = match operation.access {
        Access::Open => None,
        Access::BeaconSignature => Some(json!([{"beaconSignature": [], "beaconTimestamp": [], "beaconTenant": []}])),
        Access::ReadToken | Access::AdminToken => Some(json!([{"tenantToken": []}])),
        // Open unless the operator sets a token: both are valid ways to call it.
        Access::MetricsToken => Some(json!([{}, {"metricsToken": []}])),
    };
    if let Some(security) = security {
        object["security"] = security;
    }
    object
}

const COMPONENTS: &str = "#/components/schemas/";

/// The request shape of a tenant config, as a reference: a stored document has that shape.
pub(crate) const TENANT_CONFIG_INPUT: &str = "#/components/schemas/TenantConfigInput";

fn generator(contract: Contract) -> SchemaGenerator {
    SchemaSettings::draft2020_12()
        .with(|settings| {
            settings.definitions_path = "/components/schemas".into();
            settings.contract = contract;
        })
        .into_generator()
}

/// Points every reference to a component named in `renamed` at its `…Input` copy.
fn rename_references(value: &mut Value, renamed: &[String]) {
    match value {
        Value::Object(object) => {
            for (key, inner) in object.iter_mut() {
                if key == "$ref"
                    && let Some(name) = inner.as_str().and_then(|r| r.strip_prefix(COMPONENTS))
                    && renamed.iter().any(|n| n == name)
                {
                    *inner = format!("{COMPONENTS}{name}Input").into();
                } else {
                    rename_references(inner, renamed);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| rename_references(item, renamed)),
        _ => {}
    }
}

/// The OpenAPI 3.1 description of the collector's API.
pub fn document() -> Value {
    let mut answers = generator(Contract::Serialize);
    let mut inputs = generator(Contract::Deserialize);
    let mut bodies: Vec<Option<Value>> = OPERATIONS
        .iter()
        .map(|operation| operation.body.map(|body| body(&mut inputs).to_value()))
        .collect();
    let mut input_schemas = inputs.take_definitions(true);
    let mut paths = Map::new();
    for (operation, body) in OPERATIONS.iter().zip(&mut bodies) {
        let object = operation_object(operation, &mut answers, body.take());
        let item = paths.entry(operation.path).or_insert_with(|| Value::Object(Map::new()));
        item[operation.method] = object;
    }
    let error_detail = answers.subschema_for::<ErrorDetail>();
    let mut schemas = answers.take_definitions(true);
    let renamed: Vec<String> = input_schemas
        .iter()
        .filter(|(name, schema)| schemas.get(*name).is_some_and(|answer| answer != *schema))
        .map(|(name, _)| name.clone())
        .collect();
    for schema in input_schemas.values_mut() {
        rename_references(schema, &renamed);
    }
    for item in paths.values_mut() {
        for operation in item.as_object_mut().into_iter().flat_map(|item| item.values_mut()) {
            if let Some(body) = operation.get_mut("requestBody") {
                rename_references(body, &renamed);
            }
        }
    }
    for (name, schema) in input_schemas {
        let name = if renamed.contains(&name) {
            format!("{name}Input")
        } else {
            name
        };
        schemas.entry(name).or_insert(schema);
    }
    schemas.insert(
        "ErrorBody".into(),
        json!({"type": "object", "required": ["error"], "properties": {"error": error_detail},
               "additionalProperties": false, "description": "Every error the API answers."}),
    );
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Cohort collector",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Beacon ingest from the edge, experiment results, and the tenant config control plane. \
                            Generated by `cohort openapi` from the collector's route table and types.",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "tags": [
            {"name": "ingest", "description": "Signed batches from the edge's queue consumer"},
            {"name": "results", "description": "Read with the tenant's read token"},
            {"name": "config", "description": "The control plane: reads with the read token, writes with an admin token"},
            {"name": "operations", "description": "Probes and metrics"},
        ],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "tenantToken": {"type": "http", "scheme": "bearer",
                                "description": "`cohort token --tenant T` (read) or `--admin LABEL` (admin)"},
                "metricsToken": {"type": "http", "scheme": "bearer", "description": "`COHORT_METRICS_TOKEN`"},
                "beaconSignature": {"type": "apiKey", "in": "header", "name": "cohort-signature",
                                    "description": "Hex HMAC-SHA256 of `timestamp.body` under the tenant's beacon key"},
                "beaconTimestamp": {"type": "apiKey", "in": "header", "name": "cohort-timestamp",
                                    "description": "Unix seconds, within 300 s of the collector's clock"},
                "beaconTenant": {"type": "apiKey", "in": "header", "name": "cohort-tenant",
                                 "description": "The tenant every record of the batch belongs to"},
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_has_a_unique_id_and_method_on_its_path() {
        let mut ids: Vec<&str> = OPERATIONS.iter().map(|o| o.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), OPERATIONS.len(), "operation ids are unique");
        let mut routes: Vec<(&str, &str)> = OPERATIONS.iter().map(|o| (o.path, o.method)).collect();
        routes.sort_unstable();
        routes.dedup();
        assert_eq!(routes.len(), OPERATIONS.len(), "one operation per method and path");
    }

    #[test]
    fn every_reference_resolves_to_a_component() {
        let document = document();
        let schemas = document["components"]["schemas"].as_object().unwrap();
        let text = document.to_string();
        let mut references = 0;
        for reference in text.split("\"$ref\":\"").skip(1) {
            let target = reference.split('"').next().unwrap();
            let name = target
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("{target} points outside the components"));
            assert!(schemas.contains_key(name), "{target} has no schema");
            references += 1;
        }
        assert!(
            references > 20,
            "bodies and answers refer to their types ({references})"
        );
        for (name, expected) in [
            ("ExperimentResults", "sample_ratio"),
            ("Exposure", "config_version"),
            ("TenantConfig", "experiments"),
            ("TenantConfigInput", "experiments"),
        ] {
            assert!(schemas[name]["properties"].get(expected).is_some(), "{name}.{expected}");
        }
        // A field skipped when empty is optional in an answer; a defaulted field in a request.
        let required = |name: &str| schemas[name]["required"].as_array().unwrap().clone();
        assert!(!required("ConfigDiff").contains(&"moves".into()));
        assert!(!required("PutConfigRequest").contains(&"dry_run".into()));
        assert!(required("PutConfigRequest").contains(&"config".into()));
        let put = &document["paths"]["/v1/tenants/{tenant}/config"]["put"];
        assert_eq!(
            put["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/PutConfigRequest"
        );
        assert_eq!(
            schemas["PutConfigRequest"]["properties"]["config"]["$ref"],
            TENANT_CONFIG_INPUT
        );
    }
}
