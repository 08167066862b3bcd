// HTTP on loopback: free ports, one request with a chosen Host header, waiting for a server to answer.
import http from "node:http";
import net from "node:net";

import { sleep } from "./wait.mjs";

/** A desktop Chrome: the edge worker treats a request without a browser's User-Agent as a bot. */
export const BROWSER_UA =
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36";

/** Ports this process has handed out, never handed out twice. */
const handedOut = new Set();

/**
 * Whether 127.0.0.1:`port` can be bound right now.
 * @param {number} port
 * @returns {Promise<boolean>}
 */
function bindable(port) {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/**
 * A TCP port on 127.0.0.1 that was free a moment ago. Chosen below Linux's ephemeral range
 * (32768–60999): a port the system picked for us would be just as likely the next one it hands to
 * any process binding port 0 — wrangler's internal servers do — before our server binds it.
 * @returns {Promise<number>}
 */
export async function freePort() {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    if (handedOut.has(port)) continue;
    if (await bindable(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error("no free port between 20000 and 32000 on 127.0.0.1 after 200 tries");
}

/**
 * @typedef {object} Answer
 * @property {number} status
 * @property {http.IncomingHttpHeaders} headers
 * @property {string} body
 * @property {number} ms from sending the request to the end of the body
 */

/**
 * One HTTP/1.1 request to 127.0.0.1:`port` with a chosen Host header and a browser's User-Agent
 * (unless `headers` name another); fails after `timeoutMs` without an answer. `agent` reuses
 * connections (a load generator's keep-alive pool); `keepBody: false` reads the body without
 * keeping it (the answer's `body` is then empty), for runs of a million requests.
 * @param {{ port: number, host: string, path?: string, method?: string,
 *   headers?: http.OutgoingHttpHeaders, body?: string | Buffer, timeoutMs?: number,
 *   agent?: http.Agent, keepBody?: boolean }} request
 * @returns {Promise<Answer>}
 */
export function request({
  port,
  host,
  path: requestPath = "/",
  method = "GET",
  headers = {},
  body,
  timeoutMs = 20_000,
  agent,
  keepBody = true,
}) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = http.request(
      {
        host: "127.0.0.1",
        port,
        path: requestPath,
        method,
        agent,
        headers: { host, "user-agent": BROWSER_UA, ...headers },
      },
      (res) => {
        /** @type {Buffer[]} */
        const chunks = [];
        res.on("data", (c) => keepBody && chunks.push(c));
        res.on("error", reject);
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
            ms: performance.now() - started,
          }),
        );
      },
    );
    req.setTimeout(timeoutMs, () =>
      req.destroy(new Error(`no answer to ${method} ${host}${requestPath} in ${timeoutMs / 1000} s`)),
    );
    req.on("error", reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/**
 * Asks `probe` every `intervalMs` until it resolves with a value other than undefined (a
 * rejection counts as "not yet"), while `child` runs, for at most `timeoutMs`. Each caller words
 * its own failure: resolves with `{ ready: true, value }`, `{ exited: true }` (the process ended
 * first) or `{ timedOut: true }`.
 * @template T
 * @param {{ child: import("node:child_process").ChildProcess, probe: () => Promise<T | undefined>,
 *   timeoutMs: number, intervalMs: number }} options
 * @returns {Promise<{ ready: true, value: T } | { exited: true } | { timedOut: true }>}
 */
export async function waitForServer({ child, probe, timeoutMs, intervalMs }) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) return { exited: true };
    try {
      const value = await probe();
      if (value !== undefined) return { ready: true, value };
    } catch {
      // Not listening yet.
    }
    await sleep(intervalMs);
  }
  return { timedOut: true };
}
