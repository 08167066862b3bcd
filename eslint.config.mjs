// ESLint for the project's own JavaScript (`npm run lint`): each group of files against the
// globals of the runtime it runs in. Formatting is Prettier's (.prettierrc.json), types tsc's
// (tsconfig.json, www/tsconfig.json, src/tsconfig.json).
import js from "@eslint/js";
import globals from "globals";

export default [
  {
    // Generated, vendored or installed: not ours to lint.
    ignores: [
      "node_modules/",
      "build/",
      "target/",
      "fuzz/",
      ".demo/",
      ".wrangler/",
      "www/pkg/",
      "www/dashboard/vendor/",
      "crates/browser/pkg/",
      "bench/edge/lol-html-worker/build-*/",
    ],
  },
  js.configs.recommended,
  {
    linterOptions: { reportUnusedDisableDirectives: "error" },
  },
  {
    // Node: the scripts, the tests, the benchmarks' drivers and the demo origin.
    files: ["scripts/**/*.mjs", "tests/**/*.mjs", "bench/**/*.mjs", "www/origin.mjs", "eslint.config.mjs"],
    languageOptions: { globals: globals.node },
  },
  {
    // Playwright runs these files' page.evaluate() callbacks in the page.
    files: ["tests/dashboard/*.mjs", "tests/browser-package/*.mjs"],
    languageOptions: { globals: globals.browser },
  },
  {
    // workerd: the worker and the benchmark's workers.
    files: ["src/**/*.{js,mjs}", "bench/edge/*.js"],
    languageOptions: { globals: { ...globals.serviceworker, HTMLRewriter: "readonly" } },
  },
  {
    // The pages' classic scripts; the dashboard's uPlot is the vendored script's global.
    files: ["www/**/*.js"],
    languageOptions: { sourceType: "script", globals: { ...globals.browser, uPlot: "readonly" } },
  },
];
