// Generates the edge's bot markers from the isbot package's maintained pattern list (the version
// pinned in package.json), so crawler coverage follows upstream instead of a hand-picked list:
//
//   crates/core/src/edge/bot_list.rs   the patterns, sorted into substrings, prefixes and regexes
//   testdata/bots.json                 isbot's own verdict on each line of testdata/user-agents.txt
//
//   node scripts/generate-bots.mjs           write both files
//   node scripts/generate-bots.mjs --check   exit 1 if either differs from what would be written
//
// isbot's patterns are JavaScript regexes matched case-insensitively against the user agent. The
// engine matches with regex-lite, which has no lookaround, so a pattern with lookaround is written
// here as a regex plus the literal texts that may not come right before or right after a match:
// LOOKAROUND below holds one translation per upstream pattern, and a new lookaround pattern stops
// generation until someone translates it. testdata/bots.json checks every translation against
// isbot itself (crates/core/src/edge/bots.rs runs it).
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const require = createRequire(import.meta.url);
/** @type {{ list: string[], isbot: (ua: string) => boolean }} */
const isbotModule = require("isbot");
const isbotVersion = require("isbot/package.json").version;

/**
 * @typedef {Object} Translation
 * @property {string} regex          the pattern with its lookaround removed
 * @property {string[]} notBefore    texts that may not end where a match starts
 * @property {string[]} notAfter     texts that may not start where a match ends
 */

/** @type {Record<string, Translation>} upstream pattern → translation without lookaround */
const LOOKAROUND = {
  "(?:^|[^g])news(?!sapphire)": { regex: "news", notBefore: ["g"], notAfter: ["sapphire"] },
  "(?<! channel/|google/)google(?!(?:wv|app|/google| pixel))": {
    regex: "google",
    notBefore: [" channel/", "google/"],
    notAfter: ["wv", "app", "/google", " pixel"],
  },
  "(?<! cu)bots?(?:\\b|_)": { regex: "bots?(?:\\b|_)", notBefore: [" cu"], notAfter: [] },
  "(?<!cam)scan": { regex: "scan", notBefore: ["cam"], notAfter: [] },
  "(?<!lib)http": { regex: "http", notBefore: ["lib"], notAfter: [] },
  "java(?!;)": { regex: "java", notBefore: [], notAfter: [";"] },
};

const META = /[\\^$.|?*+()[\]{}]/;

/**
 * The longest text every match of `regex` contains, or null: the engine runs a regex only on user
 * agents holding this text. Conservative: alternation anywhere at the top level gives null, and
 * groups, classes and quantified characters end a run.
 * @param {string} regex
 * @returns {string | null}
 */
function requiredText(regex) {
  const runs = [];
  let run = "";
  const end = () => {
    runs.push(run);
    run = "";
  };
  for (let i = 0; i < regex.length; i++) {
    const c = regex[i];
    if (c === "|") return null;
    if (c === "\\") {
      const next = regex[++i];
      if (/[A-Za-z0-9]/.test(next)) end();
      else run += next;
    } else if (c === "[") {
      while (regex[++i] !== "]") if (regex[i] === "\\") i++;
      end();
    } else if (c === "(") {
      for (let depth = 1; depth > 0;) {
        const g = regex[++i];
        if (g === "\\") i++;
        else if (g === "(") depth++;
        else if (g === ")") depth--;
      }
      end();
    } else if (c === "?" || c === "*" || c === "{") {
      run = run.slice(0, -1);
      if (c === "{") while (regex[i] !== "}") i++;
      end();
    } else if (c === "+" || c === "^" || c === "$" || c === ".") {
      end();
    } else {
      run += c;
    }
  }
  end();
  const longest = runs.reduce((a, b) => (b.length > a.length ? b : a), "");
  return longest.length > 0 ? longest : null;
}

/**
 * `regex` in regex-lite's syntax. JavaScript reads a `-` next to a class escape inside brackets
 * (`[\\w\\d-.]`) as a literal hyphen; regex-lite refuses it as a range, so it is escaped.
 * @param {string} regex
 * @returns {string}
 */
function toRegexLite(regex) {
  let out = "";
  let inClass = false;
  let previousWasClassEscape = false;
  for (let i = 0; i < regex.length; i++) {
    const c = regex[i];
    if (c === "\\") {
      const next = regex[++i];
      out += c + next;
      previousWasClassEscape = inClass && /[dDwWsS]/.test(next);
      continue;
    }
    if (inClass && c === "-" && (previousWasClassEscape || /^\\[dDwWsS]/.test(regex.slice(i + 1)))) {
      out += "\\-";
    } else {
      out += c;
      if (c === "[" && !inClass) inClass = true;
      else if (c === "]" && inClass) inClass = false;
    }
    previousWasClassEscape = false;
  }
  return out;
}

/**
 * The text every match of `regex` ends the user agent with, or null: a `$`-anchored pattern runs
 * only on user agents ending with it.
 * @param {string} regex
 * @returns {string | null}
 */
function requiredEnding(regex) {
  if (!regex.endsWith("$") || regex.endsWith("\\$") || regex.includes("|")) return null;
  const body = regex.slice(0, -1);
  let ending = "";
  for (let i = body.length - 1; i >= 0; i--) {
    const c = body[i];
    const escaped = i > 0 && body[i - 1] === "\\";
    if (escaped && !/[A-Za-z0-9]/.test(c)) {
      ending = c + ending;
      i--;
    } else if (!escaped && !META.test(c)) {
      ending = c + ending;
    } else {
      break;
    }
  }
  // A quantifier after the run would make its last character optional.
  return ending.length > 0 ? ending : null;
}

/** @param {string} text */
const rustString = (text) => JSON.stringify(text);
/** @param {string} text */
const rawString = (text) => {
  if (text.includes('"#')) throw new Error(`pattern ${text} needs a longer raw-string delimiter`);
  return `r#"${text}"#`;
};

const substrings = [];
const prefixes = [];
const regexes = [];
for (const pattern of isbotModule.list) {
  if (pattern !== pattern.toLowerCase() && !META.test(pattern)) {
    throw new Error(`isbot pattern ${pattern} has upper case: the engine lower-cases user agents`);
  }
  if (/\(\?<?[=!]/.test(pattern)) {
    const translation = LOOKAROUND[pattern];
    if (!translation) {
      throw new Error(
        `isbot ${isbotVersion} has a lookaround pattern with no translation: ${pattern}\n` +
          "add it to LOOKAROUND in scripts/generate-bots.mjs",
      );
    }
    regexes.push({
      ...translation,
      required: requiredText(translation.regex),
      ending: requiredEnding(translation.regex),
    });
  } else if (!META.test(pattern)) {
    substrings.push(pattern);
  } else if (pattern.startsWith("^") && !META.test(pattern.slice(1))) {
    prefixes.push(pattern.slice(1));
  } else {
    const regex = toRegexLite(pattern);
    regexes.push({ regex, notBefore: [], notAfter: [], required: requiredText(regex), ending: requiredEnding(regex) });
  }
}
const unused = Object.keys(LOOKAROUND).filter((p) => !isbotModule.list.includes(p));
if (unused.length > 0) throw new Error(`LOOKAROUND translates patterns isbot no longer has: ${unused}`);
substrings.sort();
prefixes.sort();

const list = (items, indent = "    ") => items.map((item) => `${indent}${item},\n`).join("");
const rust = `//! isbot ${isbotVersion}'s pattern list (The Unlicense, https://github.com/omrilotan/isbot),
//! sorted for the matcher in \`bots.rs\`. Generated by scripts/generate-bots.mjs; do not edit.

use super::bots::BotRegex;

/// The isbot release these patterns come from.
pub const ISBOT_VERSION: &str = ${rustString(isbotVersion)};

/// Patterns that are plain text: a user agent containing one is a bot. Sorted.
pub const SUBSTRINGS: &[&str] = &[
${list(substrings.map(rustString))}];

/// Patterns that are \`^\` and plain text: a user agent starting with one is a bot. Sorted.
pub const PREFIXES: &[&str] = &[
${list(prefixes.map(rustString))}];

/// The other patterns, lookaround translated (scripts/generate-bots.mjs \`LOOKAROUND\`).
pub const REGEXES: &[BotRegex] = &[
${regexes
  .map(
    (r) => `    BotRegex {
        regex: ${rawString(r.regex)},
        required: ${r.required === null ? "None" : `Some(${rustString(r.required)})`},
        ending: ${r.ending === null ? "None" : `Some(${rustString(r.ending)})`},
        not_before: &[${r.notBefore.map(rustString).join(", ")}],
        not_after: &[${r.notAfter.map(rustString).join(", ")}],
    },
`,
  )
  .join("")}];
`;

const userAgents = fs
  .readFileSync(path.join(root, "testdata/user-agents.txt"), "utf8")
  .split("\n")
  .filter((line) => line.length > 0 && !line.startsWith("#"));
const vectors = {
  source: `isbot ${isbotVersion}, isbot(userAgent); written by scripts/generate-bots.mjs`,
  cases: userAgents.map((userAgent) => ({ userAgent, bot: isbotModule.isbot(userAgent) })),
};
const outputs = {
  "crates/core/src/edge/bot_list.rs": rust,
  "testdata/bots.json": `${JSON.stringify(vectors, null, 2)}\n`,
};

const check = process.argv.includes("--check");
let stale = false;
for (const [file, text] of Object.entries(outputs)) {
  const target = path.join(root, file);
  const current = fs.existsSync(target) ? fs.readFileSync(target, "utf8") : null;
  if (current === text) continue;
  if (check) {
    console.error(`${file} is not what scripts/generate-bots.mjs writes from isbot ${isbotVersion}: run it`);
    stale = true;
  } else {
    fs.writeFileSync(target, text);
    console.log(`wrote ${file}`);
  }
}
if (stale) process.exit(1);
console.log(
  `isbot ${isbotVersion}: ${substrings.length} substrings, ${prefixes.length} prefixes, ${regexes.length} regexes; ` +
    `${vectors.cases.filter((c) => c.bot).length} of ${vectors.cases.length} user agents are bots`,
);
