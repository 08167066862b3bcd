// @ts-check
// The soak's KV binding: the worker's `CONFIG` namespace, wrapped so a fault window can make its
// reads fail the way a KV outage does (the read's promise rejects). A workerd wrapped binding:
// workerd calls this function with the inner bindings and hands the worker what it returns. Each
// read first asks the soak's `FAULTS` service (a function in bench/soak/run.mjs, which also
// counts the failures it injects) whether to fail.

/**
 * @param {{ KV: any, FAULTS: { fetch: (url: string) => Promise<Response> } }} env
 */
export default function wrapConfigNamespace(env) {
  /** @param {string} key */
  async function failWhenAsked(key) {
    const answer = await env.FAULTS.fetch(`http://faults/kv?key=${encodeURIComponent(key)}`);
    if (answer.status === 503) throw new Error(`KV read of ${key} failed (injected by the soak)`);
  }
  return {
    /** @param {string} key @param {any} options */
    async get(key, options) {
      await failWhenAsked(key);
      return env.KV.get(key, options);
    },
    /** @param {string} key @param {any} options */
    async getWithMetadata(key, options) {
      await failWhenAsked(key);
      return env.KV.getWithMetadata(key, options);
    },
    /** @param {any[]} args */
    put: (...args) => env.KV.put(...args),
    /** @param {any[]} args */
    list: (...args) => env.KV.list(...args),
    /** @param {any[]} args */
    delete: (...args) => env.KV.delete(...args),
  };
}
