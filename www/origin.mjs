// The demo origin: the two example tenants' websites, as their own servers would serve them.
// The edge worker forwards every tenant request here (ORIGIN_OVERRIDE) and names the site it was
// for in `x-forwarded-host`; split-URL routing shows up as another path or host.
//
//   node www/origin.mjs --port 8791
import { once } from "node:events";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";

const ROOT = import.meta.dirname;

/**
 * Each site's pages: request path → the page's content (under www/), its title and the body class;
 * every page is set in `layout.html` with its site's header.
 */
const SITES = {
  shop: {
    header: "shop/header.html",
    pages: {
      "/": { file: "shop/index.html", title: "Trailhead Outfitters" },
      "/products/trail-shoes": {
        file: "shop/products/trail-shoes.html",
        title: "Ridge Runner trail shoes · Trailhead Outfitters",
      },
      "/checkout/cart": { file: "shop/checkout/cart.html", title: "Checkout · Trailhead Outfitters" },
      // checkout-flow's `one-page` variant routes every checkout path here.
      "/checkout-onepage": { file: "shop/checkout-onepage.html", title: "Checkout · Trailhead Outfitters" },
    },
  },
  news: {
    header: "news/header.html",
    pages: {
      "/": { file: "news/index.html", title: "The Daily Ledger" },
      "/politics/2026/11/budget-vote": {
        file: "news/politics/2026-11-budget-vote.html",
        title: "Budget vote set for Thursday · The Daily Ledger",
      },
    },
  },
  // article-layout's `wide` variant routes articles to the new front end's host: the same story
  // in the wide layout.
  "news-wide": {
    header: "news/header.html",
    pages: {
      "/politics/2026/11/budget-vote": {
        file: "news/politics/2026-11-budget-vote.html",
        title: "Budget vote set for Thursday · The Daily Ledger",
        bodyClass: "wide",
      },
    },
  },
};

const read = (file) => fs.readFileSync(path.join(ROOT, file), "utf8");

/** A page set in the layout with its site's header. */
function render(layout, site, page) {
  const fields = {
    title: page.title,
    body_class: page.bodyClass ?? "",
    header: read(site.header),
    content: read(page.file),
  };
  return layout.replace(/\{\{(\w+)\}\}/g, (_, name) => fields[name]);
}

// Every page rendered once at start-up: loadgen asks for them thousands of times.
const LAYOUT = read("layout.html");
const RENDERED = new Map(
  Object.entries(SITES).flatMap(([name, site]) =>
    Object.entries(site.pages).map(([pagePath, page]) => [`${name} ${pagePath}`, render(LAYOUT, site, page)]),
  ),
);

/** Which site a hostname is (the tenants' `hostnames`, and the routed host of `wide`). */
const HOSTS = {
  "shop.localhost": "shop",
  "shop.example": "shop",
  "www.shop.example": "shop",
  "news.localhost": "news",
  "news.example": "news",
  "wide.news.example": "news-wide",
};

const ASSETS = { "/assets/site.css": "text/css; charset=utf-8", "/assets/track.js": "text/javascript; charset=utf-8" };
const ASSET_BODIES = new Map(Object.keys(ASSETS).map((asset) => [asset, fs.readFileSync(path.join(ROOT, asset))]));

function siteOf(request) {
  const host = String(request.headers["x-forwarded-host"] ?? request.headers.host ?? "").replace(/:\d+$/, "");
  return HOSTS[host.toLowerCase()];
}

function send(response, status, type, body, cacheControl) {
  response.writeHead(status, {
    "content-type": type,
    "cache-control": cacheControl,
    "content-length": Buffer.byteLength(body),
  });
  response.end(body);
}

function handle(request, response) {
  const pathname = new URL(request.url, "http://origin").pathname;
  if (request.method !== "GET" && request.method !== "HEAD") {
    return send(response, 405, "text/plain; charset=utf-8", "method not allowed\n", "no-store");
  }
  if (ASSETS[pathname])
    return send(response, 200, ASSETS[pathname], ASSET_BODIES.get(pathname), "public, max-age=3600");
  const html = RENDERED.get(`${siteOf(request)} ${pathname}`);
  if (html === undefined) {
    const body = `<!doctype html><title>Not found</title><h1>Not found</h1><p>${siteOf(request) ?? "unknown site"}: no page at this path.</p>`;
    return send(response, 404, "text/html; charset=utf-8", body, "no-store");
  }
  // Pages are shared-cacheable at the origin; the edge makes personalised answers private.
  send(response, 200, "text/html; charset=utf-8", html, "public, max-age=60");
}

/** Starts the origin on 127.0.0.1:`port` (0 picks a free port); resolves with its port and close(). */
export async function startDemoOrigin({ port = 0 } = {}) {
  const server = http.createServer((request, response) => {
    try {
      handle(request, response);
    } catch (error) {
      send(
        response,
        500,
        "text/plain; charset=utf-8",
        `origin error: ${/** @type {Error} */ (error).message}\n`,
        "no-store",
      );
    }
  });
  server.listen(port, "127.0.0.1");
  await once(server, "listening"); // rejects if "error" comes first (the port is taken)
  return {
    port: /** @type {import("node:net").AddressInfo} */ (server.address()).port,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(resolve);
      }),
  };
}

if (process.argv[1] === import.meta.filename) {
  const index = process.argv.indexOf("--port");
  const port = index > 0 ? Number(process.argv[index + 1]) : 8791;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`origin: --port ${process.argv[index + 1]}: expected a port number`);
    process.exit(2);
  }
  const origin = await startDemoOrigin({ port });
  console.log(`demo origin on http://127.0.0.1:${origin.port}`);
}
