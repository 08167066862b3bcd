// Where the repository is, for the demo, the tests and the benchmarks that share scripts/lib/.
import path from "node:path";

/** The repository's root directory. */
export const ROOT = path.resolve(import.meta.dirname, "../..");
