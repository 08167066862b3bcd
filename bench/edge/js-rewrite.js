// @ts-check
// The floor for any worker that edits pages: the JS pass-through plus the same 3 edits (the ACTIONS
// binding, cohort-core Action JSON) streamed through workerd's native HTMLRewriter by the Cohort
// worker's own shim, with no engine, cookie or beacon. With SKIP_REWRITE set it only copies the
// response into a new one with one more header, as a worker that sets Set-Cookie does.
import { rewriteHtml } from "../../src/html_rewriter.js";

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const headers = new Headers(request.headers);
    headers.set("x-forwarded-host", url.hostname);
    const response = await fetch(new URL(url.pathname + url.search, env.ORIGIN_OVERRIDE), {
      method: request.method,
      headers,
      body: request.body,
      redirect: "manual",
    });
    if (env.SKIP_REWRITE) {
      const copied = new Headers(response.headers);
      copied.set("cache-control", "private");
      return new Response(response.body, { status: response.status, headers: copied });
    }
    return rewriteHtml(response, JSON.parse(env.ACTIONS), null);
  },
};
