// scripts/check-claims.mjs fails on each kind of claim it exists to catch: a citation of something
// missing, a DESIGN.md figure with no source, a table of targets that does not say whether it is
// gated. Each case runs the real script against a small tree that differs from a clean one in that
// one respect.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";

const SCRIPT = path.resolve(import.meta.dirname, "../../scripts/check-claims.mjs");

const CLEAN = {
  Makefile: "bench:\n\techo bench\n",
  ".gitignore": "/target\n",
  "README.md":
    "# Demo\n\n| measure | target (reported, not gated) | measured |\n|---|---|---|\n| speed | ≤ 5 µs | 4 µs |\n",
  "DESIGN.md": [
    "# Design",
    "",
    "## Figures",
    "",
    "| requirement | target | measured | source | gate |",
    "|---|---|---|---|---|",
    "| speed | ≤ 5 µs | 4.1 µs | (benchmark: make bench, bench/results.md) | reported, not gated |",
    "",
    "## Capacity",
    "",
    "| id | assumption | value |",
    "|---|---|---|",
    "| A1 | requests | 12,000 req/s |",
    "",
  ].join("\n"),
  "docs/notes.md": "See `make bench`.\n",
  "bench/results.md": "4.1 µs\n",
};

/** Writes CLEAN with `changes` applied (a value of null deletes the file) and runs the check on it. */
function check(changes = {}, ...flags) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "check-claims-"));
  try {
    for (const [file, text] of Object.entries({ ...CLEAN, ...changes })) {
      if (text === null) continue;
      fs.mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
      fs.writeFileSync(path.join(root, file), text);
    }
    const run = spawnSync(process.execPath, [SCRIPT, "--root", root, ...flags], { encoding: "utf8", timeout: 30_000 });
    return { status: run.status, out: run.stdout + run.stderr };
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

test("a clean tree passes", () => {
  const { status, out } = check();
  assert.equal(status, 0, out);
  assert.match(out, /all ok/);
});

test("a cited file that does not exist fails the check", () => {
  const { status, out } = check({ "bench/results.md": null });
  assert.equal(status, 1, out);
  assert.match(out, /DESIGN\.md:7: .*no file bench\/results\.md/);
});

test("a cited make target that does not exist fails the check", () => {
  const { status, out } = check({ "docs/notes.md": "See `make soak`.\n" });
  assert.equal(status, 1, out);
  assert.match(out, /docs\/notes\.md:1: .*the Makefile has no target soak/);
});

test("a DESIGN.md figure with no source in its row, table or section fails the check", () => {
  const design = `${CLEAN["DESIGN.md"]}\n## Latency\n\nThe collector answers in 55 ms at the median.\n`;
  const { status, out } = check({ "DESIGN.md": design });
  assert.equal(status, 1, out);
  assert.match(out, /DESIGN\.md:17: "55 ms" .*a figure with no benchmark, test or document cited/);
});

test("a figure whose section cites its source passes, and --figures names that source", () => {
  const design = `${CLEAN["DESIGN.md"]}\n## Latency\n\nFrom \`make bench\`.\n\nThe collector answers in 55 ms.\n`;
  const { status, out } = check({ "DESIGN.md": design }, "--figures");
  assert.equal(status, 0, out);
  assert.match(out, /\| DESIGN\.md:19 \| 55 ms \| `make bench` \(the section's source\) \|/);
  assert.match(out, /\| DESIGN\.md:13 \| 12,000 req\/s \| derived from the capacity assumptions/);
});

test("a table of targets that does not say whether it is gated fails the check", () => {
  const readme = CLEAN["README.md"].replace("target (reported, not gated)", "target");
  const { status, out } = check({ "README.md": readme });
  assert.equal(status, 1, out);
  assert.match(out, /README\.md:3: "table of targets" .*without a "gate" column or "reported, not gated"/);
});

test("an unknown argument is refused", () => {
  const run = spawnSync(process.execPath, [SCRIPT, "--lst"], { encoding: "utf8", timeout: 30_000 });
  assert.equal(run.status, 2);
  assert.match(run.stderr, /unknown argument '--lst'/);
});
