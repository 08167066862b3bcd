// The collector's deployment files (deploy/collector/: Dockerfile, compose.yaml, the systemd unit)
// run the real binary as they describe. No container engine runs on this machine, so the image
// is not built here; instead each file's settings (its environment, entrypoint or ExecStart) start
// the same `cohort collector` on a throwaway PostgreSQL (scripts/postgres.sh provides
// COHORT_TEST_DATABASE_URL), which must become ready, serve its dashboard, log JSON and stop
// cleanly on SIGTERM. Values that only make sense inside the image or on the host (the
// database's host name, the secret's mount point) are checked
// against the file that puts them there, then replaced by their local equivalents.
import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { parse } from "yaml";
import { cohortBinary } from "../../scripts/lib/cohort.mjs";
import { freePort, request, waitForServer } from "../../scripts/lib/http.mjs";
import { ROOT } from "../../scripts/lib/paths.mjs";
import { startProcess } from "../../scripts/lib/processes.mjs";

const DATABASE = process.env.COHORT_TEST_DATABASE_URL;
const read = (file) => fs.readFileSync(path.join(ROOT, "deploy/collector", file), "utf8");
const dockerfile = read("Dockerfile");
const compose = parse(read("compose.yaml"));
const unit = read("cohort-collector.service");

/** The Dockerfile's final stage: its ENV (name → value), ENTRYPOINT and COPY destinations. */
function runtimeStage() {
  const stage = dockerfile.split(/^FROM /m).at(-1) ?? "";
  const joined = stage.replace(/\\\n\s*/g, " ");
  const env = Object.fromEntries(
    [...joined.matchAll(/^ENV (.+)$/gm)].flatMap((m) => [...m[1].matchAll(/(\w+)=(\S+)/g)].map((p) => [p[1], p[2]])),
  );
  const entrypoint = JSON.parse(joined.match(/^ENTRYPOINT (\[.*\])$/m)?.[1] ?? "[]");
  const copies = [...joined.matchAll(/^COPY --from=\w+ (\S+) (\S+)$/gm)].map((m) => m[2]);
  const user = joined.match(/^USER (\S+)$/m)?.[1];
  return { env, entrypoint, copies, user };
}

/** The unit's Environment= lines (name → value) and ExecStart words. */
function unitSettings() {
  const env = Object.fromEntries([...unit.matchAll(/^Environment=(\w+)=(.*)$/gm)].map((m) => [m[1], m[2].trim()]));
  const execStart =
    unit
      .match(/^ExecStart=(.+)$/m)?.[1]
      .trim()
      .split(/\s+/) ?? [];
  return { env, execStart };
}

/**
 * Starts `cohort ARGS` with `env` (on top of a bare PATH: nothing leaks in from the test's own
 * environment), waits for /readyz, and checks what every deployment relies on.
 * @param {string[]} args
 * @param {Record<string, string>} env
 */
async function runsAsDeployed(args, env) {
  const port = await freePort();
  const environment = { PATH: process.env.PATH ?? "", ...env, COHORT_LISTEN: `127.0.0.1:${port}` };
  const collector = startProcess(cohortBinary(), args, { env: environment, group: false });
  try {
    const started = await waitForServer({
      child: collector.child,
      probe: async () => {
        const answer = await request({ port, host: "localhost", path: "/readyz", timeoutMs: 2000 });
        return answer.status === 200 ? answer.body : undefined;
      },
      timeoutMs: 30_000,
      intervalMs: 100,
    });
    assert.ok("ready" in started, `the collector did not become ready:\n${collector.log.join("")}`);
    const dashboard = await request({ port, host: "localhost", path: "/dashboard/" });
    assert.equal(dashboard.status, 200, "the dashboard is served");
    assert.match(dashboard.body, /<html/i);
    const vendor = await request({ port, host: "localhost", path: "/dashboard/vendor/uPlot.iife.min.js" });
    assert.equal(vendor.status, 200, "the dashboard's vendored uPlot is served");
  } finally {
    const { code, signal } = await collector.stop();
    assert.equal(code, 0, `SIGTERM ends the collector cleanly (signal ${signal}):\n${collector.log.join("")}`);
  }
  const lines = collector.log.join("").split("\n").filter(Boolean);
  assert.ok(lines.length > 0, "the collector logs its start");
  for (const line of lines) assert.doesNotThrow(() => JSON.parse(line), `a log line that is not JSON: ${line}`);
  return lines;
}

/** A secret file as a mounted secret would be: 32 random bytes as hex and a trailing newline. */
function secretFile() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cohort-deploy-"));
  const file = path.join(dir, "cohort_secret");
  fs.writeFileSync(file, `${crypto.randomBytes(32).toString("hex")}\n`, { mode: 0o600 });
  return { dir, file };
}

test("the deployment tests run against PostgreSQL", () => {
  assert.ok(DATABASE?.startsWith("postgres://"), "run under scripts/postgres.sh (COHORT_TEST_DATABASE_URL)");
});

test("the Dockerfile builds a non-root image that runs `cohort collector`, whose binary holds the dashboard", () => {
  const { env, entrypoint, copies, user } = runtimeStage();
  assert.deepEqual(entrypoint, ["/usr/local/bin/cohort", "collector"]);
  assert.ok(user && user !== "root" && user !== "0", `runs as ${user}`);
  assert.ok(copies.includes("/usr/local/bin/cohort"), "the binary is copied in");
  assert.equal(env.COHORT_DASHBOARD_DIR, undefined, "the image serves the dashboard built into the binary");
  assert.equal(env.COHORT_LISTEN, "0.0.0.0:8790", "listens on every interface inside the container");
  assert.match(dockerfile, /^EXPOSE 8790$/m);
  // `COPY . .` copies the context: build outputs and installs stay out of it.
  const ignored = read("Dockerfile.dockerignore").split("\n");
  for (const entry of ["target", "node_modules", ".git", "deploy/collector/cohort_secret"])
    assert.ok(ignored.includes(entry), `Dockerfile.dockerignore leaves out ${entry}`);
});

test("compose.yaml's collector, as configured, stores in PostgreSQL and serves its dashboard", async () => {
  const service = compose.services.collector;
  const env = service.environment;
  // What only holds inside compose's network and the image, checked before it is replaced.
  const url = new URL(env.COHORT_DATABASE_URL);
  assert.equal(url.protocol, "postgres:");
  assert.ok(url.hostname in compose.services, `the database host ${url.hostname} is a compose service`);
  assert.equal(compose.services[url.hostname].environment.POSTGRES_DB, url.pathname.slice(1));
  assert.equal(env.COHORT_SECRET_FILE, `/run/secrets/${service.secrets[0]}`, "the secret is compose's mount");
  assert.equal(env.COHORT_DASHBOARD_DIR, undefined, "the dashboard is the binary's own");
  assert.ok(service.ports.includes(`${env.COHORT_LISTEN.split(":")[1]}:8790`), "the listening port is published");
  assert.equal(service.depends_on.db.condition, "service_healthy");

  const secret = secretFile();
  try {
    const lines = await runsAsDeployed(runtimeStage().entrypoint.slice(1), {
      ...env,
      COHORT_DATABASE_URL: /** @type {string} */ (DATABASE),
      COHORT_SECRET_FILE: secret.file,
    });
    const listening = lines.map((line) => JSON.parse(line)).find((l) => l.fields?.message === "collector listening");
    assert.equal(listening?.fields.backend, "Postgres", `the collector stores in PostgreSQL:\n${lines.join("\n")}`);
    assert.equal(listening?.fields.dashboard, true);
  } finally {
    fs.rmSync(secret.dir, { recursive: true, force: true });
  }
});

test("the systemd unit's ExecStart and environment run the collector", async () => {
  const { env, execStart } = unitSettings();
  assert.deepEqual(execStart, ["/usr/local/bin/cohort", "collector"]);
  assert.equal(env.COHORT_SECRET_FILE, "%d/cohort_secret", "the secret comes from LoadCredential");
  assert.match(unit, /^LoadCredential=cohort_secret:/m);
  assert.match(unit, /^DynamicUser=yes$/m);
  const secret = secretFile();
  try {
    await runsAsDeployed(execStart.slice(1), {
      ...env,
      COHORT_DATABASE_URL: /** @type {string} */ (DATABASE),
      COHORT_SECRET_FILE: env.COHORT_SECRET_FILE.replace("%d", secret.dir),
    });
  } finally {
    fs.rmSync(secret.dir, { recursive: true, force: true });
  }
});
