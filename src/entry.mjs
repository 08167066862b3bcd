// Worker entry: the Rust worker (built into build/ by worker-build) behind the fail-open guard.
//
// Tenant pages take the one-call path: this file reads what the engine needs from the request,
// calls `planPage` (src/page.rs) once, and carries out the plan it returns (origin fetch, HTML
// edits, Set-Cookie, Cache-Control). Every decision is made in the Wasm; this file only moves
// bytes. The first-party endpoints (/_cohort/...) and the delivery queue's consumer run in Rust
// through the `worker` crate (src/lib.rs, src/delivery.rs).
//
// Whatever goes wrong (an error, or a panic, which traps the Wasm instance) the visitor gets the
// origin's response to the untouched request. A trap inside an async Rust task never settles that
// task's promise, so the guard also listens for the trap itself; the generated glue
// re-initialises the Wasm instance before the next call.
import RustWorker from "../build/index.js";
import { isHtml, rewriteHtml } from "./html_rewriter.js";

// Paths the worker answers itself (src/lib.rs); everything else on a tenant host is a page.
const OWN_PATHS = "/_cohort/";
// Headers that mark a prefetch or prerender, as src/lib.rs's PURPOSE_HEADERS (endpoints) reads them.
const PURPOSE_HEADERS = ["sec-purpose", "purpose", "x-purpose", "x-moz"];

// Rejecters of the async Rust calls in flight: a trap kills the instance they all run in.
const inFlight = new Set();
addEventListener("error", (event) => {
  if (event.error instanceof WebAssembly.RuntimeError) {
    for (const reject of inFlight) reject(event.error);
    inFlight.clear();
  }
});

/** `run()`'s promise, rejected instead of left pending if the Wasm instance traps meanwhile. */
async function untilTrapped(run) {
  let reject;
  const trapped = new Promise((_, r) => (reject = r));
  inFlight.add(reject);
  try {
    return await Promise.race([run(), trapped]);
  } finally {
    inFlight.delete(reject);
  }
}

export default class CohortEdge extends RustWorker {
  async fetch(request) {
    const url = new URL(request.url);
    return url.pathname.startsWith(OWN_PATHS) ? this.endpoint(request) : this.page(request, url);
  }

  /** A tenant's page: one engine call, then the plan carried out; fails open at every step. */
  async page(request, url) {
    let plan;
    let init;
    try {
      let planJson = this.plan(request);
      if (planJson === undefined) {
        // First request for this host in the isolate: read its tenant from KV, then plan.
        await untilTrapped(() => this.loadTenant(this.env, url.hostname));
        planJson = this.plan(request);
      }
      if (!planJson) return passThrough(request, this.env); // no tenant claims this host
      plan = JSON.parse(planJson);
      const headers = new Headers(request.headers);
      for (const [name, value] of plan.headers) headers.set(name, value);
      init = { method: request.method, headers, body: request.body, redirect: "manual" };
      if (plan.cacheKey) init.cf = { cacheKey: plan.cacheKey };
    } catch (error) {
      logFailOpen("plan", error);
      return passThrough(request, this.env);
    }
    let origin;
    try {
      origin = await fetch(plan.origin, init);
    } catch (error) {
      return originUnreachable(error);
    }
    try {
      return this.respond(origin, plan);
    } catch (error) {
      logFailOpen("respond", error);
      return origin;
    }
  }

  /** The request facts the engine reads, and its plan: undefined (tenant not loaded), "" or JSON. */
  plan(request) {
    const headers = request.headers;
    const header = (name) => headers.get(name) ?? "";
    const purpose = PURPOSE_HEADERS.map(header).join(";");
    const cf = request.cf;
    return this.planPage(
      this.env,
      this.ctx,
      request.url,
      header("user-agent"),
      header("accept-language"),
      header("referer"),
      header("cookie"),
      header("sec-gpc"),
      purpose,
      cf?.country,
      cf?.region,
      cf?.city,
      cf?.asn,
      cf?.colo,
    );
  }

  /** The origin's response with the plan's edits and headers. */
  respond(origin, plan) {
    const rewrite = (plan.actions.length > 0 || plan.assignments != null) && isHtml(origin);
    let response = rewrite ? rewriteHtml(origin, plan.actions, plan.assignments) : origin;
    if (!plan.setCookie && !plan.personalised) return response;
    // The rewriter's output is a response of our own whose headers can change in place; the
    // origin's own headers are immutable, so that response is re-wrapped first.
    if (!rewrite) {
      const init = { status: response.status, statusText: response.statusText, headers: response.headers };
      if (response.webSocket) init.webSocket = response.webSocket;
      response = new Response(response.body, init);
    }
    const headers = response.headers;
    if (plan.setCookie) headers.append("set-cookie", plan.setCookie);
    // A personalised response never goes into a shared cache (nor does its Set-Cookie).
    if (plan.personalised) headers.set("cache-control", this.privateCacheControl(headers.get("cache-control")));
    return response;
  }

  /** `/_cohort/...`: answered by Rust, which keeps a copy of a request with a body to fail open. */
  async endpoint(request) {
    const untouched = request.clone();
    try {
      return await untilTrapped(() => super.fetch(request));
    } catch (error) {
      logFailOpen("endpoint", error);
      return passThrough(untouched, this.env);
    }
  }

  // The delivery queue's consumer (src/delivery.rs). Rust acknowledges or retries each message
  // itself; if it fails or traps instead, every message it has not settled is retried later.
  async queue(batch) {
    try {
      await untilTrapped(() => super.queue(batch, this.env, this.ctx));
    } catch (error) {
      console.log(JSON.stringify({ event: "delivery.consumer_failed", queue: batch.queue, error: String(error) }));
      batch.retryAll({ delaySeconds: 30 });
    }
  }
}

/** One line per failure: the step that failed (plan, respond, endpoint) and the error. */
function logFailOpen(step, error) {
  console.log(JSON.stringify({ event: "fail_open", step, error: String(error) }));
}

function originUnreachable(error) {
  // Nothing of ours to fall back on; the only answer that is not the origin's own.
  console.log(JSON.stringify({ event: "origin_unreachable", error: String(error) }));
  return new Response("Bad Gateway: origin unreachable", { status: 502 });
}

/** The request sent on untouched: unknown hosts, and every failure (fail open). */
async function passThrough(request, env) {
  const override = env.ORIGIN_OVERRIDE;
  try {
    if (!override) return await fetch(request);
    const url = new URL(request.url);
    const origin = new URL(url.pathname + url.search, override);
    const headers = new Headers(request.headers);
    headers.set("x-forwarded-host", url.hostname);
    return await fetch(origin, { method: request.method, headers, body: request.body, redirect: "manual" });
  } catch (error) {
    return originUnreachable(error);
  }
}
