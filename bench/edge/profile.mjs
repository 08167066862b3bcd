// @ts-check
// Where a worker's CPU goes: V8's sampling profiler, driven over workerd's inspector protocol
// (`workerd serve --inspector-addr`), while a load runs. bench/edge/run.mjs uses it in profile mode
// (BENCH_PROFILE); the summary sorts self time into what the Cohort worker is made of: its
// JavaScript entry, the HTML rewriter callbacks, the wasm-bindgen glue, the Wasm itself, and the
// runtime underneath (fetch, streams, HTMLRewriter's parser, garbage collection).
//
// Needs Node's WebSocket (`node --experimental-websocket` on Node 20).

/**
 * The inspector's WebSocket URL of the service `name` (`GET /json/list`).
 * @param {number} port
 * @param {string} name
 */
async function debuggerUrl(port, name) {
  const response = await fetch(`http://127.0.0.1:${port}/json/list`);
  /** @type {{ title?: string, id?: string, webSocketDebuggerUrl?: string }[]} */
  const targets = await response.json();
  const target = targets.find((t) => t.title === name || t.id === name);
  if (!target?.webSocketDebuggerUrl) {
    throw new Error(`no inspector target \`${name}\` among ${JSON.stringify(targets.map((t) => t.title ?? t.id))}`);
  }
  return target.webSocketDebuggerUrl.replace("localhost", "127.0.0.1");
}

/**
 * A V8 CPU profile of service `name` over `run()` (which may block the event loop: the profiler
 * samples inside workerd, and only the start and stop commands go over the socket).
 * @param {number} port the inspector's port
 * @param {string} name the service's name in workerd's config
 * @param {() => void} run
 * @param {number} intervalUs sampling interval
 */
export async function profileWhile(port, name, run, intervalUs = 200) {
  if (typeof WebSocket === "undefined") throw new Error("run node with --experimental-websocket");
  const socket = new WebSocket(await debuggerUrl(port, name));
  await new Promise((resolve, reject) => {
    socket.addEventListener("open", resolve, { once: true });
    socket.addEventListener("error", () => reject(new Error(`inspector socket of ${name} failed`)), { once: true });
  });
  let nextId = 1;
  /** @type {Map<number, (message: any) => void>} */
  const pending = new Map();
  socket.addEventListener("message", (event) => {
    const message = JSON.parse(String(event.data));
    pending.get(message.id)?.(message);
    pending.delete(message.id);
  });
  /** @param {string} method @param {object} [params] @returns {Promise<any>} */
  const send = (method, params = {}) =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      const timer = setTimeout(() => reject(new Error(`${method}: no answer in 60 s`)), 60_000);
      pending.set(id, (message) => {
        clearTimeout(timer);
        if (message.error) reject(new Error(`${method}: ${JSON.stringify(message.error)}`));
        else resolve(message.result);
      });
      socket.send(JSON.stringify({ id, method, params }));
    });
  try {
    await send("Profiler.enable");
    await send("Profiler.setSamplingInterval", { interval: intervalUs });
    await send("Profiler.start");
    run();
    const { profile } = await send("Profiler.stop");
    return profile;
  } finally {
    socket.close();
  }
}

/**
 * Which source module each line of an esbuild bundle comes from, by the `// path` line esbuild
 * writes before each module: a function from a 0-based line number to that path.
 * @param {string} bundleText
 * @returns {(line: number) => string | undefined}
 */
export function bundleModules(bundleText) {
  /** @type {{ line: number, module: string }[]} */
  const starts = [];
  bundleText.split("\n").forEach((text, line) => {
    const marker = text.match(/^\/\/ (\S+\.m?js)$/);
    if (marker) starts.push({ line, module: marker[1].replace(/^(\.\.\/)+/, "") });
  });
  return (line) => starts.findLast((start) => start.line <= line)?.module;
}

/**
 * What a frame belongs to.
 * @param {{ functionName: string, url: string, lineNumber: number }} frame
 * @param {(line: number) => string | undefined} moduleOf the bundle's modules
 */
function category(frame, moduleOf) {
  const { functionName: name, url } = frame;
  if (name === "(garbage collector)") return "garbage collection";
  if (name === "(idle)") return "idle";
  if (name === "(program)" || name === "(root)") return "runtime outside JavaScript (I/O, streams, HTML parsing)";
  if (url.startsWith("wasm://") || url.endsWith(".wasm") || /^(\$|wasm-function)/.test(name)) return "Wasm";
  if (url === "") return "runtime APIs called from JavaScript (fetch, HTMLRewriter, URL, Headers, ...)";
  const module = moduleOf(frame.lineNumber) ?? url.split("/").pop();
  if (module === "build/index.js") return "JavaScript: wasm-bindgen glue (build/index.js)";
  return `JavaScript: ${module}`;
}

/**
 * Self time per category and the top functions by self time, from a V8 CPU profile of a bundled
 * worker (`moduleOf`: its modules, from {@link bundleModules}).
 * @param {{ nodes: { id: number, callFrame: { functionName: string, url: string, lineNumber: number } }[],
 *   samples: number[], timeDeltas: number[] }} profile
 * @param {(line: number) => string | undefined} moduleOf
 */
export function summarize(profile, moduleOf) {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  /** @type {Map<string, number>} */
  const categories = new Map();
  /** @type {Map<string, { category: string, us: number }>} */
  const functions = new Map();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const us = profile.timeDeltas[i + 1] ?? 0;
    const node = byId.get(id);
    if (!node) return;
    const what = category(node.callFrame, moduleOf);
    categories.set(what, (categories.get(what) ?? 0) + us);
    const frame = node.callFrame;
    const where = frame.url === "" ? "" : ` ${moduleOf(frame.lineNumber) ?? frame.url.split("/").pop()}`;
    const key = `${frame.functionName || "(anonymous)"}${where}`;
    const entry = functions.get(key) ?? { category: what, us: 0 };
    entry.us += us;
    functions.set(key, entry);
    total += us;
  });
  const busy = total - (categories.get("idle") ?? 0);
  return {
    totalMs: total / 1000,
    busyMs: busy / 1000,
    categories: [...categories]
      .filter(([what]) => what !== "idle")
      .map(([what, us]) => ({ what, ms: us / 1000, share: us / busy }))
      .sort((a, b) => b.ms - a.ms),
    top: [...functions]
      .filter(([, f]) => f.category !== "idle")
      .map(([name, f]) => ({ name, category: f.category, ms: f.us / 1000, share: f.us / busy }))
      .sort((a, b) => b.ms - a.ms)
      .slice(0, 15),
  };
}
