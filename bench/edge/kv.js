// @ts-check
// Stands in for Workers KV. workerd's `kvNamespace` binding sends each read to this service as
// `GET https://fake-host/<url-encoded key>?urlencoded=true`; a missing key is a 404. The values
// come from the KV_ENTRIES text binding (a JSON object of key → value), written by run.mjs.
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (request.method !== "GET") return new Response("read-only", { status: 405 });
    const key = decodeURIComponent(url.pathname.slice(1));
    const entries = (globalThis.entries ??= JSON.parse(env.KV_ENTRIES));
    return key in entries ? new Response(entries[key]) : new Response(null, { status: 404 });
  },
};
