// @ts-check
// Stands in for the Cohort worker's delivery queue (the BEACONS producer binding). workerd's `queue`
// binding turns each `send` into an HTTP request to this service; it accepts every message and
// counts them (GET /stats answers {requests, bytes}), so exposures take the production path (one
// queue send per batch) instead of the direct-POST fallback a missing binding would take.
let requests = 0;
let bytes = 0;
export default {
  async fetch(request) {
    const url = new URL(request.url);
    if (request.method === "GET" && url.pathname === "/stats") return Response.json({ requests, bytes });
    const body = await request.arrayBuffer();
    requests += 1;
    bytes += body.byteLength;
    // workerd reads the answer as the send's metadata (queue metrics).
    return Response.json({ metadata: { metrics: { backlogCount: 0, backlogBytes: 0, oldestMessageTimestamp: 0 } } });
  },
};
