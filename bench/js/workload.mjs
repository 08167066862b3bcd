// The shared peer-benchmark workload (bench/workload.json) translated into the configs of
// the engines compared from JavaScript: a Cohort tenant (schema 1) and GrowthBook experiments.
// Used by bench/js/engine.mjs (Wasm vs JS in Node) and bench/edge/run.mjs (edge workers).
import fs from "node:fs";
import path from "node:path";

const HERE = import.meta.dirname;
export const WORKLOAD_PATH = path.resolve(HERE, "../workload.json");

/**
 * The parts of bench/workload.json the translations read.
 * @typedef {{ experiments: { key: string, targeting: Record<string, unknown>,
 *   variants: { key: string, weight: number }[] }[] }} Workload
 */

export function loadWorkload(file = WORKLOAD_PATH) {
  const workload = JSON.parse(fs.readFileSync(file, "utf8"));
  if (workload.experiments.length !== 20)
    throw new Error(`workload: expected 20 experiments, got ${workload.experiments.length}`);
  return workload;
}

/** Renames a condition's attribute keys (top level; the workload has no logical operators). */
function renameAttributes(condition, names) {
  return Object.fromEntries(Object.entries(condition).map(([key, value]) => [names[key] ?? key, value]));
}

/**
 * A Cohort tenant config holding the workload's 20 experiments, running, every path, full coverage.
 * `attributeNames` maps workload attribute names to the names the caller's context uses (the edge
 * worker computes `device` itself and exposes the site's cookies as `cookies.<name>`).
 * `actions(experimentKey, variantKey)` gives each variant's actions (default none).
 * @param {Workload} workload
 * @param {{ tenant?: string, hostnames?: string[], attributeNames?: Record<string, string>,
 *   actions?: (experimentKey: string, variantKey: string) => object[] }} [options]
 */
export function cohortTenant(
  workload,
  { tenant = "workload", hostnames = ["workload.bench.test"], attributeNames = {}, actions } = {},
) {
  return {
    schema: 1,
    tenant,
    version: 1,
    hostnames,
    hash_key: "5d2b8e0f4a6c41d3b7e9f0a1c2d3e4f5",
    experiments: workload.experiments.map((e) => ({
      key: e.key,
      status: "running",
      targeting: renameAttributes(e.targeting, attributeNames),
      variants: e.variants.map((v) => ({
        key: v.key,
        weight: v.weight,
        ...(actions ? { actions: actions(e.key, v.key) } : {}),
      })),
    })),
  };
}

/**
 * GrowthBook experiment definitions of the workload: `condition` is the same Mongo-style targeting
 * (GrowthBook's own language, which Cohort's follows), `weights` the 50/50 split as fractions,
 * `coverage` 1. `variation(experimentKey, variantKey)` gives each variation's value (for inline
 * experiments) or its visual-editor changes (for the edge worker's auto experiments).
 */
export function growthbookExperiments(workload, { attributeNames = {}, variation = (_, v) => v } = {}) {
  return workload.experiments.map((e) => ({
    key: e.key,
    condition: renameAttributes(e.targeting, attributeNames),
    variations: e.variants.map((v) => variation(e.key, v.key)),
    weights: e.variants.map((v) => v.weight / 10000),
    coverage: 1,
  }));
}
