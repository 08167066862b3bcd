// Sums cargo-mutants outputs (scripts/mutants.sh) into one Markdown report: per module the mutants
// caught, missed, timed out and unviable, the score, and every mutant that survived.
//
//   node scripts/mutants-report.mjs --out FILE DIR   DIR holds one folder per run (part or shard),
//                                                     each with cargo-mutants' mutants.out/
//
// Each part's counts are kept beside FILE in parts/<part>.json (committed), so that running one
// part (hours for some) rewrites that part only and the report still shows every part measured,
// each with the commit and runs it came from. A part's shards (part-k-of-n) are merged.
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
if (!out || !dir) {
  console.error("usage: node scripts/mutants-report.mjs --out FILE DIR (DIR: scripts/mutants.sh's outputs)");
  process.exit(2);
}

const OUTCOMES = ["caught", "missed", "timeout", "unviable"];
/** module path → { caught: [...], missed: [...], timeout: [...], unviable: [...] } */
const modules = new Map();
const runs = [];
/** mutant → the run that judged it */
const runOfLine = new Map();
for (const run of fs.existsSync(dir) ? fs.readdirSync(dir).sort() : []) {
  const results = path.join(dir, run, "mutants.out");
  if (!fs.existsSync(path.join(results, "outcomes.json"))) continue;
  runs.push(run);
  // The run's own outcomes, then what earlier `--iterate` runs settled.
  /** @type {Map<string, string>} */
  const outcomeOf = new Map();
  // cargo-mutants keeps the run before an `--iterate` run in mutants.out.old: its unviable
  // mutants come back listed in previously_caught.txt, and are unviable, not caught.
  const earlierUnviable = path.join(dir, run, "mutants.out.old", "unviable.txt");
  if (fs.existsSync(earlierUnviable))
    for (const line of fs.readFileSync(earlierUnviable, "utf8").split("\n").filter(Boolean))
      outcomeOf.set(line, "unviable");
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
    runOfLine.set(line, run);
  }
}
const commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { encoding: "utf8" }).trim();
const today = new Date().toISOString().slice(0, 10);
const partOf = (/** @type {string} */ run) => run.replace(/-\d+-of-\d+$/, "");
const partsDir = path.join(path.dirname(out), "parts");
fs.mkdirSync(partsDir, { recursive: true });
// This run's parts replace their stored summaries; parts not run keep theirs.
for (const part of new Set(runs.map(partOf))) {
  const partRuns = runs.filter((run) => partOf(run) === part);
  const partModules = Object.fromEntries(
    [...modules.entries()]
      .filter(([, m]) =>
        OUTCOMES.some((o) => m[o].some((/** @type {string} */ line) => partRuns.includes(runOfLine.get(line)))),
      )
      .map(([module, m]) => [
        module,
        {
          ...Object.fromEntries(OUTCOMES.map((o) => [o, m[o].length])),
          survivors: m.missed,
        },
      ]),
  );
  const summary = { part, commit, date: today, cores: os.cpus().length, runs: partRuns, modules: partModules };
  fs.writeFileSync(path.join(partsDir, `${part}.json`), `${JSON.stringify(summary, null, 1)}\n`);
}
/** @type {{part: string, commit: string, date: string, cores: number, runs: string[], modules: Record<string, any>}[]} */
const parts = fs
  .readdirSync(partsDir)
  .filter((f) => f.endsWith(".json"))
  .sort()
  .map((f) => JSON.parse(fs.readFileSync(path.join(partsDir, f), "utf8")));
if (!parts.length) {
  console.error(`mutants-report: no cargo-mutants output under ${dir} and no stored parts in ${partsDir}`);
  process.exit(1);
}

const score = (c) => {
  const judged = c.caught + c.missed + c.timeout;
  return judged ? `${(((c.caught + c.timeout) / judged) * 100).toFixed(1)} %` : "—";
};
const crateOf = (module) => module.split("/").slice(0, 2).join("/");
const row = (name, c) =>
  `| ${name} | ${c.caught + c.missed + c.timeout + c.unviable} | ${c.caught} | ${c.missed} | ${c.timeout} | ${c.unviable} | ${score(c)} |`;
const shardNote = (/** @type {string[]} */ partRuns) => {
  const shards = partRuns.map((run) => run.match(/-(\d+)-of-(\d+)$/)).filter(Boolean);
  if (!shards.length) return "every mutant";
  const n = shards[0]?.[2];
  return `shards ${shards.map((m) => m?.[1]).join(", ")} of ${n} (round-robin: every ${n}th mutant, a sample across every file)`;
};

const lines = [
  "# Mutation testing",
  "",
  "Written by `make mutants` (`bash scripts/mutants.sh`, cargo-mutants); each part is rewritten when",
  "it is run again. Score = (caught + timeout) ÷ (caught + missed + timeout). What the surviving",
  "mutants mean, and which were answered with tests, is in docs/testing.md.",
  "",
  "| part | commit | date | cores | mutants run |",
  "|---|---|---|---:|---|",
  ...parts.map((p) => `| ${p.part} | ${p.commit} | ${p.date} | ${p.cores} | ${shardNote(p.runs)} |`),
  "",
  "| module | mutants | caught | missed | timeout | unviable | score |",
  "|---|---:|---:|---:|---:|---:|---:|",
];
/** module → counts, summed over parts (a module belongs to one part) */
const merged = new Map();
for (const p of parts) for (const [module, c] of Object.entries(p.modules)) merged.set(module, c);
const sorted = [...merged.keys()].sort();
for (const crate of [...new Set(sorted.map(crateOf))]) {
  const total = Object.fromEntries(OUTCOMES.map((o) => [o, 0]));
  for (const module of sorted.filter((m) => crateOf(m) === crate)) {
    const c = merged.get(module);
    for (const o of OUTCOMES) total[o] += c[o];
    lines.push(row(`\`${module}\``, c));
  }
  lines.push(row(`**${crate}, all**`, total));
}
lines.push("", "## Surviving mutants", "");
const survivors = sorted.flatMap((m) => merged.get(m).survivors);
if (!survivors.length) lines.push("None.");
for (const line of survivors) lines.push(`- \`${line}\``);
lines.push("");
fs.mkdirSync(path.dirname(out), { recursive: true });
fs.writeFileSync(out, lines.join("\n"));
console.log(`mutants-report: ${out}: ${survivors.length} surviving mutants in ${merged.size} modules`);
