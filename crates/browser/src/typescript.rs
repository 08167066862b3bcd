//! The TypeScript declarations of what the exports take and give, appended to the generated
//! `.d.ts`. wasm-bindgen cannot derive them: the config and the decisions cross as JSON, so they
//! are written here from their definitions — the tenant config from `cohort_core::config` (and
//! docs/config.md), the decisions from `Decision`'s `Serialize` in `cohort_core::evaluate` (and
//! testdata/README.md), the context from `ContextJson`, the errors from `EngineError`.
//! tests/browser-package/ type-checks the example configs and the evaluation vectors against them,
//! and the config's fields, required fields and enums against schemas/tenant-config.schema.json
//! (generated from `cohort_core::config`), so a config change that misses these fails there.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const DECLARATIONS: &'static str = r#"
/** A tenant config, schema 1 (docs/config.md): what `Engine.fromConfig` takes. */
export interface TenantConfig {
    /** Where an editor finds the JSON Schema; ignored by the engine. */
    $schema?: string;
    /** The only schema this engine reads. */
    schema: 1;
    /** Tenant id: lowercase letters, digits, `-` and `_`, at most 64 characters. */
    tenant: string;
    /** Config version, at least 1; grows with every publish. */
    version: number;
    /** Hostnames the tenant serves (lowercase, no port). */
    hostnames: string[];
    /** The 16-byte bucketing key as 32 hex characters. */
    hash_key: string;
    /** Basis points (0 to 10000) of visitors held out of every experiment; default 0. */
    holdout?: number;
    /** Sets of mutually exclusive experiments. */
    layers?: LayerConfig[];
    /** The experiments, in evaluation order. */
    experiments?: ExperimentConfig[];
    /** How the edge treats the tenant's visitors; the browser engine ignores it. */
    edge?: EdgeConfig;
    /** How results analyse each metric; the browser engine ignores it. */
    metrics?: MetricConfig[];
}

/** A layer: experiments in one layer never share a visitor. */
export interface LayerConfig {
    key: string;
    description?: string;
}

/** An experiment's lifecycle status. */
export type ExperimentStatus = "draft" | "running" | "paused" | "stopped";

/** An experiment's bucketing function. */
export type HashMode = "cohort-v1" | "growthbook-v2" | "growthbook-v1";

export interface ExperimentConfig {
    /** Unique in the tenant: letters, digits, `-`, `_`, `.`; at most 64 characters. */
    key: string;
    name?: string;
    description?: string;
    /** Bucketing seed; defaults to the key. */
    seed?: string;
    status: ExperimentStatus;
    /** With `stopped`: the variant key served to everyone. */
    winner?: string;
    /** RFC 3339 time before which nobody is assigned. */
    start?: string;
    /** RFC 3339 time from which nobody is assigned. */
    end?: string;
    /** Path patterns: exact, glob (`*`, `**`, `?`) or `~` and a regex; absent or empty: every path. */
    paths?: string[];
    /** Targeting condition; absent, `null` or `{}` targets everyone. */
    targeting?: Condition | null;
    /** Basis points (0 to 10000) of targeted visitors that enter; default 10000. */
    coverage?: number;
    hash?: HashMode;
    /** The half-open range `[start, end)` of the layer's buckets the experiment owns. */
    layer?: { key: string; range: [number, number] };
    /** 2 to 20 variants; the first is the control. */
    variants: VariantConfig[];
}

export interface VariantConfig {
    /** Unique in the experiment (same characters as experiment keys). */
    key: string;
    /** Share in basis points; an experiment's weights sum to 10000. */
    weight: number;
    /** What the edge does for visitors in this variant. */
    actions?: Action[];
}

/** Something the edge does for a variant; the engine validates and carries it. */
export type Action =
    | { type: "route"; path?: string; host?: string }
    | { type: "request_header"; name: string; value: string }
    | { type: "set_text"; selector: string; text: string }
    | { type: "set_attribute"; selector: string; name: string; value: string }
    | { type: "insert_html"; selector: string; position: InsertPosition; html: string }
    | { type: "remove"; selector: string };

/** Where `insert_html` puts its fragment, relative to each matching element. */
export type InsertPosition = "before" | "after" | "prepend" | "append" | "replace";

/** How the edge treats the tenant's visitors and origin (the browser engine ignores it). */
export interface EdgeConfig {
    cookie_domain?: string;
    opt_out_cookie?: string;
    /** The site's own visitor-id cookie the edge buckets on: a page reading it agrees with the edge. */
    unit_id_cookie?: string;
    /** A request header carrying the visitor's id, set in front of the edge. */
    unit_id_header?: string;
    origin?: string;
    /** Whether the edge writes the visitor's id and assignments into HTML pages. */
    inject_assignments?: boolean;
}

export interface MetricConfig {
    key: string;
    name?: string;
    kind: "conversion" | "value";
    direction?: "higher" | "lower";
    window_hours?: number;
    cap?: number;
    winsorize_percentile?: number;
    guardrail?: boolean;
}

/**
 * A targeting condition in GrowthBook's Mongo-style language: attribute paths (`"user.plan"`) to
 * literals or operator objects (`{"$in": ["DE", "AT"]}`), and `$and`, `$or`, `$nor`, `$not`.
 */
export type Condition = Record<string, unknown>;

/** The visitor's targeting attributes, as conditions read them (`{country: "DE", device: "mobile"}`). */
export type Attributes = Record<string, unknown>;

/** What `decisions` evaluates. */
export interface EvaluationContext {
    /** The visitor's unit id, the one the edge buckets. */
    unit: string;
    /** The path without query string; default `/`. */
    path?: string;
    /** Targeting attributes; anything but an object counts as none. */
    attributes?: Attributes | null;
    /** Unix milliseconds; default the page's clock. */
    now?: number;
    /** QA overrides: experiment key to variant key. */
    forced?: Record<string, string>;
}

/** What `assign` gives: experiment key to variant key, for the experiments the visitor is in. */
export type Assignments = Record<string, string>;

/** How an assigned variant was chosen (`sticky` only at the edge, which reads the visitor's cookie). */
export type AssignmentSource = "bucketed" | "sticky" | "forced" | "winner";

/** The visitor is in the experiment. */
export interface Assignment {
    experiment: string;
    variant: string;
    source: AssignmentSource;
    /** The experiment bucket (0 to 9999) when `source` is `bucketed`; `null` otherwise. */
    bucket: number | null;
    /** Whether the caller logs an exposure now. */
    exposure: boolean;
}

/** Why a visitor is not in an experiment. */
export type ExclusionReason =
    | "path_not_matched"
    | "unknown_forced_variant"
    | "draft"
    | "stopped"
    | "not_started"
    | "ended"
    | "paused"
    | "not_targeted"
    | "holdout"
    | "outside_layer"
    | "outside_coverage";

/** The visitor is not in the experiment. */
export interface Exclusion {
    experiment: string;
    reason: ExclusionReason;
    /** With `holdout`, `outside_layer` and `outside_coverage`: the bucket that decided. */
    bucket?: number;
    /** With `unknown_forced_variant`: the forced key the experiment does not have. */
    forced_variant?: string;
}

/** One experiment's decision: an `Assignment` (it has `variant`) or an `Exclusion` (it has `reason`). */
export type Decision = Assignment | Exclusion;

/** The input an `EngineError` is about. */
export type EngineErrorKind = "config" | "context" | "attributes" | "condition" | "hash_key";

/** What the exports throw on bad input; `isEngineError` recognises it. */
export interface EngineError extends Error {
    name: "EngineError";
    kind: EngineErrorKind;
    /**
     * For `config` errors: the JSON path of the offending value
     * (`experiments[2].variants[1].weight`), empty for the document itself.
     */
    path?: string;
}
"#;
