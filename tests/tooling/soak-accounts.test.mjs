// The soak's accounts (bench/soak/accounts.mjs) catch each way stored data can be wrong: a row
// missing, stored twice, with another variant or config version, or never shown; a conversion
// missing, stored twice or on another unit. Without this, a soak whose comparison had a hole
// would report "every account exact" whatever the collector stored.
import assert from "node:assert/strict";
import { test } from "node:test";

import { compareConversions, compareExposures } from "../../bench/soak/accounts.mjs";

const expected = new Map([
  ["shop\thero-banner\tu1", { variant: "control", version: 14 }],
  ["shop\t_holdout\tu1", { variant: "rest", version: 14 }],
  ["news\theadline-test\tu2", { variant: "control", version: 3 }],
  ["news\tsoak-layout\tu3", { variant: "compact", version: 4 }],
]);
const exact = [
  "shop\thero-banner\tu1\tcontrol\t14",
  "shop\t_holdout\tu1\trest\t14",
  "news\theadline-test\tu2\tcontrol\t3",
  "news\tsoak-layout\tu3\tcompact\t4",
];

test("exact rows are exact, with the versions per tenant", () => {
  const result = compareExposures(expected, exact);
  assert.deepEqual(
    { ...result, samples: undefined },
    {
      stored: 4,
      expected: 4,
      missing: 0,
      missingBy: {},
      wrongVariant: 0,
      misattributed: 0,
      unexpected: 0,
      versions: { shop: { 14: 2 }, news: { 3: 1, 4: 1 } },
      samples: undefined,
    },
  );
});

test("each kind of wrong exposure row is counted", () => {
  const cases = [
    { rows: exact.slice(1), want: { missing: 1 } },
    { rows: [...exact, exact[0]], want: { unexpected: 1 } },
    { rows: [...exact, "shop\thero-banner\tu9\tcontrol\t14"], want: { unexpected: 1 } },
    { rows: [exact[0].replace("control", "free-shipping"), ...exact.slice(1)], want: { wrongVariant: 1 } },
    { rows: [...exact.slice(0, 3), "news\tsoak-layout\tu3\tcompact\t3"], want: { misattributed: 1 } },
  ];
  for (const { rows, want } of cases) {
    const result = compareExposures(expected, rows);
    const counted = {
      missing: result.missing,
      unexpected: result.unexpected,
      wrongVariant: result.wrongVariant,
      misattributed: result.misattributed,
    };
    assert.deepEqual(
      counted,
      { missing: 0, unexpected: 0, wrongVariant: 0, misattributed: 0, ...want },
      rows.join(" | "),
    );
  }
});

test("each kind of wrong conversion row is counted", () => {
  const accepted = new Map([
    ["shop\tsoak-1-0", "u1"],
    ["news\tsoak-1-1", "u2"],
  ]);
  const exactRows = ["shop\tsoak-1-0\tu1", "news\tsoak-1-1\tu2"];
  assert.deepEqual(compareConversions(accepted, exactRows), { stored: 2, accepted: 2, missing: 0, wrong: 0 });
  assert.deepEqual(compareConversions(accepted, exactRows.slice(1)), { stored: 1, accepted: 2, missing: 1, wrong: 0 });
  assert.equal(compareConversions(accepted, [...exactRows, exactRows[0]]).wrong, 1, "stored twice");
  assert.equal(compareConversions(accepted, ["shop\tsoak-1-0\tu2", exactRows[1]]).wrong, 1, "on another unit");
  assert.equal(compareConversions(accepted, [...exactRows, "shop\tsoak-1-9\tu1"]).wrong, 1, "never accepted");
});
