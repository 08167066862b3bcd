// @ts-check
// The soak's exact accounts (docs/soak.md, "The accounts"): what the collector stored against the
// load generator's ground truth. Pure functions over rows as the sqlite3 shell prints them
// (tab-separated), so tests/tooling/soak-accounts.test.mjs can show each discrepancy is caught.

/**
 * Stored exposures against the expected ones.
 * @param {Map<string, { variant: string, version: number | undefined }>} expected
 *   `tenant\texperiment\tunit` → the variant shown and the config version that served it
 * @param {string[]} rows `tenant\texperiment\tunit\tvariant\tconfig_version`, one per stored row
 */
export function compareExposures(expected, rows) {
  const result = {
    stored: rows.length,
    expected: expected.size,
    missing: 0,
    /** Missing rows per `tenant experiment`. @type {Record<string, number>} */
    missingBy: {},
    wrongVariant: 0,
    misattributed: 0,
    unexpected: 0,
    /** Rows per tenant and config version. @type {Record<string, Record<number, number>>} */
    versions: {},
    /** A few of the rows that are wrong, for the report. @type {string[]} */
    samples: [],
  };
  const sample = (/** @type {string} */ what) => {
    if (result.samples.length < 5) result.samples.push(what);
  };
  const storedKeys = new Set();
  for (const row of rows) {
    const [tenant, experiment, unit, variant, versionText] = row.split("\t");
    const version = Number(versionText);
    const key = `${tenant}\t${experiment}\t${unit}`;
    const versions = (result.versions[tenant] ??= {});
    versions[version] = (versions[version] ?? 0) + 1;
    const want = expected.get(key);
    if (want === undefined || storedKeys.has(key)) {
      result.unexpected += 1;
      sample(`stored but never shown (or twice): ${row}`);
      continue;
    }
    storedKeys.add(key);
    if (want.variant !== variant) {
      result.wrongVariant += 1;
      sample(`${row}: shown ${want.variant}`);
    }
    if (want.version !== version) {
      result.misattributed += 1;
      sample(`${row}: shown under version ${want.version}`);
    }
  }
  for (const key of expected.keys()) {
    if (storedKeys.has(key)) continue;
    result.missing += 1;
    const group = key.split("\t").slice(0, 2).join(" ");
    result.missingBy[group] = (result.missingBy[group] ?? 0) + 1;
  }
  return result;
}

/**
 * Stored conversions against the accepted ones.
 * @param {Map<string, string | undefined>} accepted `tenant\tevent id` → the unit that posted it
 * @param {string[]} rows `tenant\tevent id\tunit`, one per stored row
 */
export function compareConversions(accepted, rows) {
  let wrong = 0;
  const storedEvents = new Set();
  for (const row of rows) {
    const [tenant, id, unit] = row.split("\t");
    const key = `${tenant}\t${id}`;
    if (storedEvents.has(key) || accepted.get(key) !== unit) wrong += 1;
    storedEvents.add(key);
  }
  const missing = [...accepted.keys()].filter((key) => !storedEvents.has(key)).length;
  return { stored: rows.length, accepted: accepted.size, missing, wrong };
}
