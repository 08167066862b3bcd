// Worker entry: the Rust worker (built into build/ by worker-build) behind the fail-open guard.
// Whatever goes wrong in Rust (an error it returns, or a panic, which traps the Wasm instance) the
// visitor gets the origin's response to the untouched request kept here. A trap inside an async
// task never settles that request's promise, so the guard also listens for the trap itself; the
// generated glue re-initialises the Wasm instance before the next request.
import RustWorker from "../build/index.js";

// Rejecters of the requests in flight: a trap kills the instance they all run in.
const inFlight = new Set();
addEventListener("error", (event) => {
  if (event.error instanceof WebAssembly.RuntimeError) {
    for (const reject of inFlight) reject(event.error);
    inFlight.clear();
  }
});

export default class CohortEdge extends RustWorker {
  async fetch(request) {
    const untouched = request.clone();
    let reject;
    const trapped = new Promise((_, r) => (reject = r));
    inFlight.add(reject);
    try {
      return await Promise.race([super.fetch(request), trapped]);
    } catch (error) {
      console.log(JSON.stringify({ event: "fail_open", error: String(error) }));
      return passThrough(untouched, this.env);
    } finally {
      inFlight.delete(reject);
    }
  }

  // The delivery queue's consumer (src/delivery.rs). Rust acknowledges or retries each message
  // itself; if it fails or traps instead, every message it has not settled is retried later.
  async queue(batch) {
    let reject;
    const trapped = new Promise((_, r) => (reject = r));
    inFlight.add(reject);
    try {
      await Promise.race([super.queue(batch, this.env, this.ctx), trapped]);
    } catch (error) {
      console.log(JSON.stringify({ event: "delivery.consumer_failed", queue: batch.queue, error: String(error) }));
      batch.retryAll({ delaySeconds: 30 });
    } finally {
      inFlight.delete(reject);
    }
  }
}

async function passThrough(request, env) {
  const override = env.ORIGIN_OVERRIDE;
  if (!override) return fetch(request);
  const url = new URL(request.url);
  const origin = new URL(url.pathname + url.search, override);
  const headers = new Headers(request.headers);
  headers.set("x-forwarded-host", url.hostname);
  return fetch(origin, { method: request.method, headers, body: request.body, redirect: "manual" });
}
