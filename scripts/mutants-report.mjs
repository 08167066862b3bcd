// Sums cargo-mutants outputs (scripts/mutants.sh) into one Markdown report: per module the mutants
// caught, missed, timed out and unviable, the score, and every mutant that survived.
//
//   node scripts/mutants-report.mjs --out FILE DIR   DIR holds one folder per run (part or shard),
//                                                     each with cargo-mutants' mutants.out/
//
// Score = (caught + timeout) / (caught + missed + timeout): a mutant that makes the tests hang is
// detected (cargo-mutants kills it), an unviable one does not compile and tests nothing.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const args = process.argv.slice(2);
const outAt = args.indexOf("--out");
const out = outAt >= 0 ? args[outAt + 1] : undefined;
const dir = args.filter((a, i) => a !== "--out" && args[i - 1] !== "--out")[0];
if (!out || !dir || !fs.existsSync(dir)) {
  console.error("usage: node scripts/mutants-report.mjs --out FILE DIR (DIR: scripts/mutants.sh's outputs)");
  process.exit(2);
}

const OUTCOMES = ["caught", "missed", "timeout", "unviable"];
/** module path → { caught: [...], missed: [...], timeout: [...], unviable: [...] } */
const modules = new Map();
const runs = [];
for (const run of fs.readdirSync(dir).sort()) {
  const results = path.join(dir, run, "mutants.out");
  if (!fs.existsSync(path.join(results, "outcomes.json"))) continue;
  runs.push(run);
  // The run's own outcomes, then what earlier `--iterate` runs settled.
  /** @type {Map<string, string>} */
  const outcomeOf = new Map();
  // previously_caught.txt: caught by an earlier run that a later `--iterate` run skipped.
  for (const [outcome, name] of [...OUTCOMES.map((o) => [o, o]), ["caught", "previously_caught"]]) {
    const file = path.join(results, `${name}.txt`);
    if (!fs.existsSync(file)) continue;
    for (const line of fs.readFileSync(file, "utf8").split("\n").filter(Boolean))
      if (!outcomeOf.has(line)) outcomeOf.set(line, outcome);
  }
  // With the tree's list (scripts/mutants.sh writes it), each listed mutant counts once: by its
  // outcome, or as unviable when an iteration skipped it without a caught record (cargo-mutants
  // skips only caught and unviable ones). Without a list, every recorded outcome counts.
  const listFile = path.join(dir, run, "list.txt");
  const listed = fs.existsSync(listFile)
    ? fs.readFileSync(listFile, "utf8").split("\n").filter(Boolean)
    : [...outcomeOf.keys()];
  for (const line of listed) {
    const outcome = outcomeOf.get(line) ?? "unviable";
    const module = line.slice(0, line.indexOf(":"));
    if (!modules.has(module)) modules.set(module, Object.fromEntries(OUTCOMES.map((o) => [o, []])));
    modules.get(module)[outcome].push(line);
  }
}
if (!runs.length) {
  console.error(`mutants-report: no cargo-mutants output under ${dir}`);
  process.exit(1);
}

const score = (c) => {
  const judged = c.caught + c.missed + c.timeout;
  return judged ? `${(((c.caught + c.timeout) / judged) * 100).toFixed(1)} %` : "—";
};
const counts = (m) => Object.fromEntries(OUTCOMES.map((o) => [o, m[o].length]));
const crateOf = (module) => module.split("/").slice(0, 2).join("/");
const row = (name, c) =>
  `| ${name} | ${c.caught + c.missed + c.timeout + c.unviable} | ${c.caught} | ${c.missed} | ${c.timeout} | ${c.unviable} | ${score(c)} |`;

const sorted = [...modules.keys()].sort();
const crates = [...new Set(sorted.map(crateOf))];
const commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { encoding: "utf8" }).trim();
const lines = [
  "# Mutation testing",
  "",
  `Written by \`make mutants\` (\`bash scripts/mutants.sh\`, cargo-mutants) at commit ${commit} on ${new Date().toISOString().slice(0, 10)}, ${os.cpus().length} cores; runs: ${runs.join(", ")}.`,
  "Score = (caught + timeout) ÷ (caught + missed + timeout). What the surviving mutants mean, and",
  "which were answered with tests, is in docs/testing.md.",
  "",
  "| module | mutants | caught | missed | timeout | unviable | score |",
  "|---|---:|---:|---:|---:|---:|---:|",
];
for (const crate of crates) {
  const total = Object.fromEntries(OUTCOMES.map((o) => [o, 0]));
  for (const module of sorted.filter((m) => crateOf(m) === crate)) {
    const c = counts(modules.get(module));
    for (const o of OUTCOMES) total[o] += c[o];
    lines.push(row(`\`${module}\``, c));
  }
  lines.push(row(`**${crate}, all**`, total));
}
lines.push("", "## Surviving mutants", "");
const survivors = sorted.flatMap((m) => modules.get(m).missed);
if (!survivors.length) lines.push("None.");
for (const line of survivors) lines.push(`- \`${line}\``);
lines.push("");
fs.mkdirSync(path.dirname(out), { recursive: true });
fs.writeFileSync(out, lines.join("\n"));
console.log(`mutants-report: ${out}: ${survivors.length} surviving mutants in ${modules.size} modules`);
