// Every source a document cites for a figure or a claim must exist: README.md, DESIGN.md,
// docs/*.md and the benchmarks' READMEs are read, and each citation in them is checked against the
// tree:
//   (benchmark: COMMAND, FILE)            the command (below) and the file; for `cargo bench
//                                         --bench Y`, FILE must be that benchmark's source
//   `make TARGET`                         a target of the Makefile (in code spans, code blocks
//                                         and benchmark citations; prose "make it" is English)
//   cargo bench -p X [--bench Y]          crate X in this repository, with bench target Y
//                                         ([[bench]] in its Cargo.toml or benches/Y.rs)
//   cargo test -p X [--test Y]            crate X, with test target Y (tests/Y.rs, tests/Y/main.rs
//                                         or [[test]])
//   paths: crates/…/x.rs, tests/edge/delivery.test.mjs, bench/…, docs/… (globs allowed), and
//   relative Markdown links; paths the tree ignores (.gitignore: build outputs) are not checked.
//
// Two rules besides: every figure in DESIGN.md has a source (a citation in its table row,
// paragraph or list item, else in its section; figures derived from the capacity assumptions say
// "assumption" or "arithmetic"), and every table with a "target" column says whether a run fails
// on it (a "gate" column) or only reports it ("reported, not gated" in the header).
//
//   node scripts/check-claims.mjs           exit 1 naming each broken citation; silent count if none
//   node scripts/check-claims.mjs --list    also print every citation: where, claim, cites, ok
//   node scripts/check-claims.mjs --figures also print each DESIGN.md figure with what produces it
//   node scripts/check-claims.mjs --root DIR  check the tree at DIR instead of this repository
//
// No dependencies: node's standard library only.
import fs from "node:fs";
import path from "node:path";

const args = process.argv.slice(2);
const LIST = args.includes("--list");
const FIGURES = args.includes("--figures");
// --root DIR checks another tree (the tests give it small ones); by default this repository.
const rootAt = args.indexOf("--root");
const ROOT = rootAt >= 0 ? path.resolve(args[rootAt + 1] ?? "") : path.resolve(import.meta.dirname, "..");
for (const [i, arg] of args.entries()) {
  const known =
    arg === "--list" || arg === "--figures" || (arg === "--root" && args[i + 1]) || args[i - 1] === "--root";
  if (!known) {
    console.error(`check-claims: unknown argument '${arg}' (expected --list, --figures or --root DIR)`);
    process.exit(2);
  }
}

const exists = (relative) => fs.existsSync(path.join(ROOT, relative));
const read = (relative) => fs.readFileSync(path.join(ROOT, relative), "utf8");

// ---------------------------------------------------------------- the tree's facts
/** Makefile targets: `name:` at the start of a line. */
const makeTargets = new Set(
  read("Makefile")
    .split("\n")
    .map((line) => line.match(/^([A-Za-z0-9_-]+)\s*:(?!=)/)?.[1])
    .filter((name) => name && name !== ".PHONY"),
);

/** Paths the tree ignores (rooted .gitignore entries): build outputs a document may name. */
const ignoredPrefixes = read(".gitignore")
  .split("\n")
  .map((line) => line.trim())
  .filter((line) => line.startsWith("/"))
  .map((line) => line.slice(1).replace(/\/$/, ""));
const ignored = (relative) => ignoredPrefixes.some((p) => relative === p || relative.startsWith(`${p}/`));

/** Every Cargo package in the repository: name → { dir, benches: {name: source}, tests: {name: source} }. */
function cargoPackages() {
  const packages = new Map();
  const skip = new Set(["node_modules", "target", ".git", "build"]);
  const walk = (dir) => {
    for (const entry of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
      if (!entry.isDirectory() || skip.has(entry.name) || entry.name.startsWith(".")) continue;
      walk(path.join(dir, entry.name));
    }
    const manifest = path.join(dir, "Cargo.toml");
    if (!exists(manifest)) return;
    const toml = read(manifest);
    const name = toml.match(/^\[package\][^[]*?^name\s*=\s*"([^"]+)"/ms)?.[1];
    if (!name) return;
    /** [[kind]] tables: name and optional path. */
    const declared = (kind) =>
      [...toml.matchAll(new RegExp(`^\\[\\[${kind}\\]\\]\\n((?:(?!\\[).*\\n?)*)`, "gm"))].map((m) => ({
        name: m[1].match(/^name\s*=\s*"([^"]+)"/m)?.[1],
        path: m[1].match(/^path\s*=\s*"([^"]+)"/m)?.[1],
      }));
    /** Cargo's auto-discovered targets in `folder`: folder/NAME.rs and folder/NAME/main.rs. */
    const discovered = (folder, auto) => {
      const targets = {};
      if (new RegExp(`^${auto}\\s*=\\s*false`, "m").test(toml) || !exists(path.join(dir, folder))) return targets;
      for (const entry of fs.readdirSync(path.join(ROOT, dir, folder), { withFileTypes: true })) {
        if (entry.isFile() && entry.name.endsWith(".rs"))
          targets[entry.name.slice(0, -3)] = path.join(dir, folder, entry.name);
        if (entry.isDirectory() && exists(path.join(dir, folder, entry.name, "main.rs"))) {
          targets[entry.name] = path.join(dir, folder, entry.name, "main.rs");
        }
      }
      return targets;
    };
    const targets = (kind, folder, auto) => {
      const found = discovered(folder, auto);
      for (const t of declared(kind))
        if (t.name) found[t.name] = path.join(dir, t.path ?? path.join(folder, `${t.name}.rs`));
      return found;
    };
    packages.set(name, {
      dir: dir || ".",
      benches: targets("bench", "benches", "autobenches"),
      tests: targets("test", "tests", "autotests"),
    });
  };
  walk("");
  return packages;
}
const packages = cargoPackages();

/** Whether a path (possibly with * globs) names something in the tree. */
function pathExists(relative) {
  if (!relative.includes("*")) return exists(relative);
  const segments = relative.split("/").filter(Boolean);
  const match = (dir, rest) => {
    if (rest.length === 0) return true;
    const [head, ...tail] = rest;
    if (!head.includes("*")) return exists(path.join(dir, head)) && match(path.join(dir, head), tail);
    const pattern = new RegExp(`^${head.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*")}$`);
    let entries;
    try {
      entries = fs.readdirSync(path.join(ROOT, dir));
    } catch {
      return false;
    }
    return entries.some((entry) => pattern.test(entry) && match(path.join(dir, entry), tail));
  };
  return match("", segments);
}

// ---------------------------------------------------------------- checks; each returns "ok" or why not
function checkCargo(command) {
  const words = command.trim().split(/\s+/);
  const at = words.indexOf("cargo");
  const sub = words[at + 1];
  const option = (flag) => {
    const i = words.indexOf(flag);
    return i >= 0 ? words[i + 1] : undefined;
  };
  const crate = option("-p") ?? option("--package");
  if (!crate) return "ok";
  const pkg = packages.get(crate);
  if (!pkg) return `no Cargo package named ${crate} in this repository`;
  if (sub === "bench") {
    const bench = option("--bench");
    if (bench && !pkg.benches[bench])
      return `${crate} has no bench target ${bench} (has: ${Object.keys(pkg.benches).join(", ") || "none"})`;
    if (!bench && Object.keys(pkg.benches).length === 0) return `${crate} has no bench targets`;
  }
  if (sub === "test") {
    const test = option("--test");
    if (test && !pkg.tests[test]) return `${crate} has no test target ${test} (tests/${test}.rs)`;
    if (words.includes("--bench") && !pkg.benches[option("--bench")])
      return `${crate} has no bench target ${option("--bench")}`;
  }
  return "ok";
}

function checkMake(target) {
  return makeTargets.has(target) ? "ok" : `the Makefile has no target ${target} (has: ${[...makeTargets].join(", ")})`;
}

function checkCommand(command) {
  const make = command.match(/^make\s+([\w-]+)/);
  if (make) return checkMake(make[1]);
  if (/(^|\s)cargo\s+(bench|test)\b/.test(command)) return checkCargo(command);
  if (/^(bash|node)\s+(\S+)/.test(command)) {
    const script = command.match(/^(?:bash|node)\s+(\S+)/)[1];
    return exists(script) ? "ok" : `no file ${script}`;
  }
  return `not a command this check knows (make, cargo bench/test, bash or node SCRIPT)`;
}

function checkBenchmark(command, file) {
  const commandOk = checkCommand(command);
  if (commandOk !== "ok") return commandOk;
  if (!exists(file)) return `no file ${file}`;
  // A criterion/harness benchmark cites its own source: it must be the target the command runs.
  const bench = command.match(/cargo\s+bench\b.*?(?:-p|--package)\s+([\w-]+).*?--bench\s+([\w-]+)/);
  if (bench) {
    const source = packages.get(bench[1]).benches[bench[2]];
    if (path.normalize(source) !== path.normalize(file))
      return `${file} is not the source of ${bench[1]}'s bench ${bench[2]} (${source})`;
  }
  return "ok";
}

// ---------------------------------------------------------------- reading the documents
const documents = [
  "README.md",
  "DESIGN.md",
  ...fs
    .readdirSync(path.join(ROOT, "docs"))
    .filter((f) => f.endsWith(".md"))
    .map((f) => `docs/${f}`),
  // The benchmarks' own descriptions, which DESIGN.md and README.md point to.
  "bench/edge/README.md",
  "benches/README.md",
].filter(exists);

/**
 * The document with every line break (and the indentation after it) collapsed to one space, so a
 * citation wrapped over lines reads as one; `lineAt[i]` is the source line of normalized char i.
 */
function normalize(text) {
  let out = "";
  const lineAt = [];
  let line = 1;
  for (let i = 0; i < text.length; i++) {
    if (text[i] === "\n") {
      let j = i;
      while (j + 1 < text.length && (text[j + 1] === " " || text[j + 1] === "\t")) j++;
      // Blank lines and table rows stay separate lines: a claim never spans them.
      const next = text[j + 1];
      out +=
        next === "\n" || next === "|" || next === undefined || (text[j + 1] === "`" && text.startsWith("```", j + 1))
          ? "\n"
          : " ";
      lineAt.push(line);
      line += 1;
      i = j;
      continue;
    }
    out += text[i];
    lineAt.push(line);
  }
  return { text: out, lineAt };
}

/** A short description of the claim a citation at `index` supports. */
function claimAt(text, index) {
  const lineStart = text.lastIndexOf("\n", index) + 1;
  const line = text.slice(lineStart, text.indexOf("\n", index) === -1 ? undefined : text.indexOf("\n", index));
  if (line.startsWith("|")) return line.split("|")[1].trim(); // a table row: its first cell
  let before = text.slice(lineStart, index);
  const sentence = Math.max(before.lastIndexOf(". "), before.lastIndexOf("; "));
  if (sentence >= 0 && index - lineStart - sentence > 12) before = before.slice(sentence + 2);
  before = before.replace(/[\s(`,:]+$/, "").replace(/^[-*#>\s]+/, "");
  if (before.length > 70) before = `…${before.slice(-69)}`;
  return before || "(heading or list item)";
}

const rows = [];
for (const doc of documents) {
  const { text, lineAt } = normalize(read(doc));
  const record = (index, kind, cites, ok) =>
    rows.push({ where: `${doc}:${lineAt[index]}`, claim: claimAt(text, index), kind, cites, ok });
  const taken = []; // [start, end) spans already checked as a benchmark citation or a link
  const inTaken = (index) => taken.some(([start, end]) => index >= start && index < end);

  // Benchmark citations: "benchmark: COMMAND, FILE)" (with or without its own parenthesis).
  const cited = "(?<=\\(|[;:] )benchmark:"; // "(benchmark: …", "(bytes: benchmark: …", "…; benchmark: …"
  for (const m of text.matchAll(new RegExp(`${cited}\\s+([^,()]+?),\\s+([\\w./-]+)\\)`, "g"))) {
    const command = m[1].replace(/^(?:[A-Z_][A-Z0-9_]*=\S*\s+)+/, ""); // environment knobs first
    if (command.startsWith("<")) continue; // the format's own description
    record(m.index, "benchmark", `${m[1]}, ${m[2]}`, checkBenchmark(command, m[2]));
    taken.push([m.index, m.index + m[0].length]);
  }
  // A citation this check cannot read is a broken one, not a skipped one.
  for (const m of text.matchAll(new RegExp(cited, "g"))) {
    if (inTaken(m.index) || text.startsWith("benchmark: <", m.index)) continue;
    record(m.index, "benchmark", text.slice(m.index, m.index + 60), "not of the form (benchmark: COMMAND, FILE)");
  }
  // Markdown links to files in the tree, relative to the document.
  for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
    const target = m[1].split("#")[0];
    if (!target || /^[a-z]+:/.test(m[1])) continue;
    const relative = path.normalize(path.join(path.dirname(doc), target));
    record(m.index, "link", target, ignored(relative) || pathExists(relative) ? "ok" : `no file ${relative}`);
    taken.push([m.index, m.index + m[0].length]);
  }
  // cargo bench / cargo test commands anywhere.
  const cargo =
    /cargo\s+(?:bench|test)(?:\s+(?:-p\s+[\w-]+|--package\s+[\w-]+|--bench\s+[\w-]+|--test\s+[\w-]+|--tests|--benches|--workspace|--release|--target\s+[\w-]+))*/g;
  for (const m of text.matchAll(cargo)) {
    if (inTaken(m.index) || !/\s(-p|--package)\s/.test(m[0])) continue;
    record(m.index, "cargo", m[0], checkCargo(m[0]));
  }
  // make targets in code: `…` spans and ``` blocks.
  const code = [...text.matchAll(/```[\s\S]*?```|`[^`\n]+`/g)];
  for (const span of code) {
    for (const m of span[0].matchAll(/(?:^|[\s`(])make\s+([\w-]+)/gm)) {
      const index = span.index + m.index;
      if (inTaken(index)) continue;
      record(index, "make", `make ${m[1]}`, checkMake(m[1]));
    }
  }
  // Paths in the tree: sources, tests, benchmarks, scripts, docs, deployment files.
  const tops = "crates|src|tests|bench|benches|scripts|docs|deploy|www|examples|fuzz|testdata|schemas";
  const pathPattern = new RegExp(`(?<![\\w./-])((?:${tops})/[\\w.*/-]*[\\w*/])`, "g");
  for (const m of text.matchAll(pathPattern)) {
    if (inTaken(m.index)) continue;
    const relative = m[1].replace(/\/$/, "");
    if (ignored(relative)) continue;
    record(m.index, "path", m[1], pathExists(relative) ? "ok" : `no such file or directory`);
  }
}

// ---------------------------------------------------------------- figures and their sources
/**
 * DESIGN.md as blocks a figure belongs to: a whole table (its rows share a source), a paragraph or
 * a list item; code blocks are skipped. Each block knows its section heading.
 */
/** @typedef {{ doc: string, line: number, text: string, table: number, section: string }} Block */
/** @param {string} doc @returns {Block[]} */
function blocksOf(doc) {
  /** @type {Block[]} */
  const blocks = [];
  /** @type {Block | null} */
  let current = null;
  let inCode = false;
  let section = "";
  const flush = () => {
    if (current) blocks.push(current);
    current = null;
  };
  read(doc)
    .split("\n")
    .forEach((line, i) => {
      if (line.startsWith("```")) {
        inCode = !inCode;
        flush();
        return;
      }
      if (inCode) return;
      if (line.startsWith("#")) {
        flush();
        section = line.replace(/^#+\s*/, "");
        return;
      }
      const row = line.startsWith("|");
      if (row) {
        // Each row is a block; rows of one table share `table` (its first line).
        flush();
        const previous = blocks.at(-1);
        const table = previous?.table && previous.line === i ? previous.table : i + 1;
        blocks.push({ doc, line: i + 1, text: line, table, section });
        return;
      }
      if (line.trim() === "" || /^\s*(?:[-*]|\d+\.)\s/.test(line)) flush();
      if (line.trim() === "") return;
      current ??= { doc, line: i + 1, text: "", table: 0, section };
      current.text += `${line.trim()} `;
    });
  flush();
  return blocks;
}

/** Quantities with a unit: the figures a reader takes as facts. */
const FIGURE = /\d[\d,.]*\s?(?:µs|ns|ms|s|%|KiB|MiB|GiB|MB|KB|×|req\/s|exposures\/s|cores|bytes)(?![\w])/g;
/** What can produce a figure: a benchmark, a test, a make target, a results file or a document. */
const SOURCE =
  /\(benchmark:[^)]*\)|cargo (?:test|bench)[^`|;)]*|`make [\w-]+`|(?:tests|bench|benches|docs|crates\/[\w-]+\/(?:tests|benches))\/[\w./*-]+/g;
const sourcesOf = (text) => [...new Set([...text.matchAll(SOURCE)].map((m) => m[0].replace(/\s+/g, " ").trim()))];

const figureRows = [];
const designBlocks = blocksOf("DESIGN.md");
/** Sources gathered per section and per table, for figures whose own block cites none. */
const gather = (key) => {
  const map = new Map();
  for (const block of designBlocks) {
    const found = sourcesOf(block.text);
    if (found.length && key(block)) map.set(key(block), [...new Set([...(map.get(key(block)) ?? []), ...found])]);
  }
  return map;
};
const sectionSources = gather((block) => block.section);
const tableSources = gather((block) => block.table);
const derivedTables = new Set(
  designBlocks.filter((b) => b.table && /\b(?:assumption|arithmetic)\b/i.test(b.text)).map((b) => b.table),
);
for (const block of designBlocks) {
  const figures = [...block.text.matchAll(FIGURE)].map((m) => m[0]);
  if (!figures.length) continue;
  const own = sourcesOf(block.text);
  const derived = /\b(?:assumption|arithmetic)\b/i.test(block.text) || derivedTables.has(block.table);
  const inherited = (sources, whose) => (sources ?? []).map((s) => `${s} (${whose})`).join("; ");
  const source = own.length
    ? own.join("; ")
    : derived
      ? "derived from the capacity assumptions (section 2)"
      : inherited(tableSources.get(block.table), "the table's source") ||
        inherited(sectionSources.get(block.section), "the section's source");
  const where = `DESIGN.md:${block.line}`;
  figureRows.push({ where, figures, source });
  if (!source)
    rows.push({
      where,
      claim: figures.slice(0, 3).join(", "),
      kind: "figure",
      cites: "nothing",
      ok: "a figure with no benchmark, test or document cited in its block or section",
    });
}

// Targets: a table with a "target" column says per row what fails a run, or that nothing does.
for (const doc of documents) {
  for (const block of blocksOf(doc)) {
    if (!block.table || block.table !== block.line) continue; // a table's first row: its header
    const header = block.text.toLowerCase();
    const cells = header.split("|").map((c) => c.trim());
    if (!cells.some((c) => c.startsWith("target"))) continue;
    const labelled = cells.includes("gate") || header.includes("reported, not gated");
    rows.push({
      where: `${doc}:${block.line}`,
      claim: "table of targets",
      kind: "gate",
      cites: "its header",
      ok: labelled ? "ok" : 'a "target" column without a "gate" column or "reported, not gated" in its header',
    });
  }
}

if (FIGURES) {
  const cell = (s) => String(s).replace(/\|/g, "\\|");
  console.log("| where | figures | produced by |\n|---|---|---|");
  for (const f of figureRows) console.log(`| ${f.where} | ${cell(f.figures.join(", "))} | ${cell(f.source)} |`);
  console.log();
}

rows.sort((a, b) => a.where.localeCompare(b.where, undefined, { numeric: true }));
const broken = rows.filter((r) => r.ok !== "ok");
if (LIST) {
  const cell = (s) => String(s).replace(/\|/g, "\\|");
  console.log("| where | claim | cites | ok |\n|---|---|---|---|");
  for (const r of rows)
    console.log(`| ${r.where} | ${cell(r.claim)} | ${r.kind}: \`${cell(r.cites)}\` | ${cell(r.ok)} |`);
  console.log();
}
const perKind = {};
for (const r of rows) perKind[r.kind] = (perKind[r.kind] ?? 0) + 1;
const kinds = Object.entries(perKind)
  .map(([kind, count]) => `${count} ${kind}`)
  .join(", ");
if (broken.length) {
  for (const r of broken)
    console.error(`check-claims: ${r.where}: "${r.claim}" cites ${r.kind} \`${r.cites}\`: ${r.ok}`);
  console.error(`check-claims: ${broken.length} of ${rows.length} citations broken (${kinds})`);
  process.exit(1);
}
console.log(`check-claims: ${rows.length} citations in ${documents.length} documents, all ok (${kinds})`);
