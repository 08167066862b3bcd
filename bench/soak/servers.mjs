// @ts-check
// The soak's two small servers, in a process of their own so the load generator keeps its core:
//
// - the tenants' origin: an HTML page with every element the example tenants edit, on every path
//   but /data.json. It echoes the `cohort-assignments` header the edge sent it (the variants this
//   page was rendered for) back as `soak-assignments`: the load generator's ground truth of what
//   each visitor saw.
// - a fault proxy in front of the collector: the edge's delivery consumer posts here. It forwards
//   to the collector, or answers the status a fault window asks for (500, or 429 with
//   Retry-After) without forwarding; a collector that is down (killed) is a 502.
//
// Started by bench/soak/run.mjs as `node servers.mjs <origin port> <proxy port> <collector port>`;
// prints `ready` once both listen. The proxy's `/_soak/` paths steer and report it:
// POST /_soak/fault?status=500|429|none, GET /_soak/stats.
import http from "node:http";

const [originPort, proxyPort, collectorPort] = process.argv.slice(2).map(Number);

const PAGE =
  '<!doctype html><html><head><title>Soak</title></head><body class="page">' +
  '<div class="hero"><h1 class="hero-title">Welcome</h1><p class="promo-static">Sale</p></div>' +
  '<h2 class="lead-headline">Budget talks continue</h2><div id="paywall">Subscribe</div>' +
  '<div id="gallery"></div><article><p>Story</p></article></body></html>';

const origin = http.createServer((req, res) => {
  req.resume();
  if (String(req.url).startsWith("/data.json")) {
    res.writeHead(200, { "content-type": "application/json", "cache-control": "public, max-age=60" });
    res.end('{"items":[1,2,3]}');
    return;
  }
  const assigned = req.headers["cohort-assignments"];
  res.writeHead(200, {
    "content-type": "text/html; charset=utf-8",
    "cache-control": "public, max-age=60",
    ...(assigned === undefined ? {} : { "soak-assignments": assigned }),
  });
  res.end(PAGE);
});
origin.keepAliveTimeout = 60_000;

/** @type {{ status: number | null, answered: Record<string, number> }} */
const state = { status: null, answered: {} };
const collectorAgent = new http.Agent({ keepAlive: true, maxSockets: 64 });

/** @param {http.ServerResponse} res @param {number} status @param {Record<string, string>} [headers] */
function answer(res, status, headers = {}) {
  state.answered[status] = (state.answered[status] ?? 0) + 1;
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify({ error: "soak_fault", status }));
}

const proxy = http.createServer((req, res) => {
  const url = new URL(String(req.url), "http://proxy");
  if (url.pathname === "/_soak/fault" && req.method === "POST") {
    req.resume();
    const status = url.searchParams.get("status");
    state.status = status === "500" ? 500 : status === "429" ? 429 : null;
    res.end(JSON.stringify({ status: state.status }));
    return;
  }
  if (url.pathname === "/_soak/stats") {
    req.resume();
    res.end(JSON.stringify(state));
    return;
  }
  if (state.status !== null) {
    req.resume();
    answer(res, state.status, state.status === 429 ? { "retry-after": "1" } : {});
    return;
  }
  const sent = Date.now();
  res.on("close", () => {
    if (process.env.SOAK_DEBUG && Date.now() - sent > 3000)
      console.error(`slow: ${req.url} ${Date.now() - sent} ms ${res.statusCode}`);
  });
  const upstream = http.request(
    {
      host: "127.0.0.1",
      port: collectorPort,
      path: req.url,
      method: req.method,
      headers: req.headers,
      agent: collectorAgent,
    },
    (response) => {
      state.answered[response.statusCode ?? 0] = (state.answered[response.statusCode ?? 0] ?? 0) + 1;
      res.writeHead(response.statusCode ?? 502, response.headers);
      // A collector killed mid-answer: end the edge's connection too, or it waits for the rest.
      response.on("aborted", () => res.destroy());
      response.on("error", () => res.destroy());
      response.pipe(res);
    },
  );
  // The collector is down (killed, restarting) or dropped the connection mid-answer.
  upstream.on("error", () => {
    if (!res.headersSent) answer(res, 502);
    else res.destroy();
  });
  req.pipe(upstream);
});
proxy.keepAliveTimeout = 60_000;

origin.listen(originPort, "127.0.0.1", () => {
  proxy.listen(proxyPort, "127.0.0.1", () => console.log("ready"));
});
