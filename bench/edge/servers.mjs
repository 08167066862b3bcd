// Loopback servers for the edge benchmark, one role per process so each gets its own core time:
//   node servers.mjs origin PORT     a fast origin: one ~4 KiB HTML page, Cache-Control public
//   node servers.mjs collector PORT  a collector stub: accepts beacon batches with 200, counts them
//                                    (GET /stats answers {batches, records, bytes}).
//   node servers.mjs features PORT FILE  a stand-in for GrowthBook's API host (cdn.growthbook.io):
//                                    GET /api/features/<client key> answers FILE (the SDK payload);
//                                    GET /stats answers {requests}.
// They only listen on 127.0.0.1 and exit on SIGTERM/SIGINT.
import fs from "node:fs";
import http from "node:http";

const [role, port] = process.argv.slice(2);

// A product page with the elements the bench tenant's experiments edit (h1.title, a.cta, .price,
// #reviews, #reviews-old, #gallery), padded with ordinary content to about 4 KiB.
const filler = Array.from(
  { length: 15 },
  (_, i) =>
    `<section class="feature" id="feature-${i}"><h2>Feature ${i + 1}</h2><p>Hand-finished oak, ` +
    `brass fittings and a lifetime guarantee. Every piece is made to order in our workshop and ` +
    `shipped flat-packed with tools included.</p></section>`,
).join("\n");
export const PAGE =
  `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>Oak side table</title>` +
  `<link rel="stylesheet" href="/static/site.css"><script src="/static/site.js" defer></script></head>\n` +
  `<body><header><nav><a href="/">Home</a> <a href="/products/">Products</a> <a href="/cart">Cart</a></nav></header>\n` +
  `<main><h1 class="title">Oak side table</h1>\n<div id="gallery" class="gallery"><img src="/img/1.jpg" alt="">` +
  `<img src="/img/2.jpg" alt=""></div>\n<p class="price">€99</p>\n<a class="cta" href="/cart/add?sku=42">Add to cart</a>\n` +
  `${filler}\n<div id="reviews"><h2>Reviews</h2><div id="reviews-old">★★★★☆ 4.2 (318 reviews)</div></div>\n` +
  `</main><footer><p>© Bench Furniture</p></footer></body></html>\n`;
const PAGE_BYTES = Buffer.from(PAGE);

function origin() {
  return http.createServer((req, res) => {
    req.resume();
    res.writeHead(200, {
      "content-type": "text/html; charset=utf-8",
      "content-length": PAGE_BYTES.length,
      "cache-control": "public, max-age=60",
    });
    res.end(PAGE_BYTES);
  });
}

function collector() {
  const stats = { batches: 0, records: 0, bytes: 0, signed: 0 };
  return http.createServer((req, res) => {
    if (req.method === "GET" && req.url === "/stats") {
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(stats));
      return;
    }
    if (req.method !== "POST") {
      req.resume();
      res.writeHead(404).end();
      return;
    }
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      stats.batches += 1;
      stats.bytes += body.length;
      if (req.headers["cohort-signature"]) stats.signed += 1;
      try {
        stats.records += JSON.parse(body.toString()).length;
      } catch {
        // Not a JSON array: the batch still counts, its records do not.
      }
      res.writeHead(200, { "content-type": "application/json" }).end('{"accepted":true}');
    });
  });
}

function features(file) {
  const payload = fs.readFileSync(file);
  const stats = { requests: 0 };
  return http.createServer((req, res) => {
    req.resume();
    if (req.url === "/stats") {
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(stats));
    } else if (req.method === "GET" && req.url?.startsWith("/api/features/")) {
      stats.requests += 1;
      res.writeHead(200, { "content-type": "application/json", "content-length": payload.length }).end(payload);
    } else {
      res.writeHead(404).end();
    }
  });
}

if (role === "origin" || role === "collector" || role === "features") {
  const server = role === "origin" ? origin() : role === "collector" ? collector() : features(process.argv[4]);
  server.keepAliveTimeout = 60_000;
  server.listen(Number(port), "127.0.0.1", () => console.log(`${role} listening on 127.0.0.1:${port}`));
  for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => process.exit(0));
} else if (role !== undefined) {
  console.error("usage: node servers.mjs origin|collector PORT | features PORT FILE");
  process.exit(2);
}
