// The Wasm exports src/entry.mjs calls, as worker-build's glue (build/index.js) makes them methods
// of the worker's entrypoint class: `handle`, `loadTenant` and `privateCacheControl` are
// src/serve.rs, `queue` is src/delivery.rs. The facts `handle` reads are entry.mjs's RequestFacts
// (src/js.rs, REQUEST_FIELDS).
export declare class RustWorker {
  constructor(ctx: ExecutionContext, env: Record<string, unknown>);
  env: Record<string, unknown>;
  ctx: ExecutionContext;
  /** The JSON of a Handling; undefined while the host's tenant is not loaded; "" for no tenant. */
  handle(
    env: Record<string, unknown>,
    ctx: ExecutionContext,
    facts: object,
    body: Uint8Array | undefined,
  ): string | undefined;
  loadTenant(env: Record<string, unknown>, ctx: ExecutionContext, host: string): Promise<void>;
  privateCacheControl(origin: string | null): string;
  queue(batch: MessageBatch, env: Record<string, unknown>, ctx: ExecutionContext): Promise<void>;
}
