// Waiting: a pause, and polling until something holds.

/** Resolves after `ms` milliseconds. */
export const sleep = (/** @type {number} */ ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Waits until `predicate()` (sync or async) holds or `ms` pass, asking every `everyMs`; returns whether it held.
 * @param {() => unknown} predicate
 */
export async function eventually(predicate, ms = 5000, everyMs = 50) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await predicate()) return true;
    await sleep(everyMs);
  }
  return await predicate();
}
