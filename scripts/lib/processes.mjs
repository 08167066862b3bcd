// Child processes started by the demo, the tests and the benchmarks, each stopped by its process
// id (never by name): other people's processes on the machine are left alone.
import { spawn } from "node:child_process";
import fs from "node:fs";

import { ROOT } from "./paths.mjs";

/** SIGTERM to the process group `pid` leads; a group that is already gone is not an error. */
export function terminateGroup(pid) {
  try {
    process.kill(-pid, "SIGTERM");
  } catch {
    // Nothing left to stop.
  }
}

/**
 * @typedef {object} StartedProcess
 * @property {import("node:child_process").ChildProcess} child
 * @property {string[]} log its stdout and stderr as they came (empty with `logFile`)
 * @property {string[]} stdout its stdout alone (empty with `logFile`)
 * @property {Promise<{ code: number | null, signal: NodeJS.Signals | null }>} exited how it ended,
 *   once its output is drained
 * @property {() => Promise<{ code: number | null, signal: NodeJS.Signals | null }>} stop SIGTERM
 *   unless it has ended already; resolves with how it ended
 */

/**
 * Starts `command` with `args` in `cwd` (the repository by default), `env` added to this process's
 * environment. By default the child leads a process group of its own and stop() signals the whole
 * group, so what it starts in turn (workerd under wrangler) stops with it; `group: false` keeps it
 * in ours and stop() signals its pid alone. Its output is kept in memory, or written to `logFile`.
 * @param {string} command
 * @param {string[]} args
 * @param {{ cwd?: string, env?: Record<string, string>, group?: boolean, logFile?: string }} [options]
 * @returns {StartedProcess}
 */
export function startProcess(command, args, { cwd = ROOT, env = {}, group = true, logFile } = {}) {
  const fd = logFile === undefined ? undefined : fs.openSync(logFile, "w");
  const child = spawn(command, args, {
    cwd,
    detached: group,
    env: { ...process.env, ...env },
    stdio: fd === undefined ? ["ignore", "pipe", "pipe"] : ["ignore", fd, fd],
  });
  if (fd !== undefined) fs.closeSync(fd);
  /** @type {string[]} */
  const log = [];
  /** @type {string[]} */
  const stdout = [];
  child.stdout?.on("data", (chunk) => stdout.push(chunk.toString()));
  for (const stream of [child.stdout, child.stderr]) stream?.on("data", (chunk) => log.push(chunk.toString()));
  // "close" comes after the exit and after its output is drained: the log is complete then.
  /** @type {Promise<{ code: number | null, signal: NodeJS.Signals | null }>} */
  const exited = new Promise((resolve) => child.once("close", (code, signal) => resolve({ code, signal })));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      if (group) terminateGroup(child.pid);
      else {
        try {
          process.kill(child.pid, "SIGTERM");
        } catch {
          // It ended meanwhile.
        }
      }
    }
    return exited;
  };
  return { child, log, stdout, exited, stop };
}
