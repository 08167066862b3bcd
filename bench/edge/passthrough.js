// @ts-check
// Baseline for the benchmark: forwards every request to the origin untouched, the same way the
// Cohort worker reaches a loopback origin (ORIGIN_OVERRIDE + x-forwarded-host), and does nothing else.
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const headers = new Headers(request.headers);
    headers.set("x-forwarded-host", url.hostname);
    return fetch(new URL(url.pathname + url.search, env.ORIGIN_OVERRIDE), {
      method: request.method,
      headers,
      body: request.body,
      redirect: "manual",
    });
  },
};
