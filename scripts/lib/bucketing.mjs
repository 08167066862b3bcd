// The bucketing contract (testdata/bucketing.json; docs/config.md, "Bucketing contract") computed
// independently of the engine, for tests and the soak to predict what the edge must assign.

const MASK64 = (1n << 64n) - 1n;
const rotl64 = (/** @type {bigint} */ x, /** @type {bigint} */ bits) => ((x << bits) | (x >> (64n - bits))) & MASK64;

/** SipHash-1-3 of `message` under a 16-byte key (both Buffers), as a 64-bit BigInt. */
function siphash13(key, message) {
  const k0 = key.readBigUInt64LE(0);
  const k1 = key.readBigUInt64LE(8);
  const v = [k0 ^ 0x736f6d6570736575n, k1 ^ 0x646f72616e646f6dn, k0 ^ 0x6c7967656e657261n, k1 ^ 0x7465646279746573n];
  const round = () => {
    v[0] = (v[0] + v[1]) & MASK64;
    v[1] = rotl64(v[1], 13n);
    v[1] ^= v[0];
    v[0] = rotl64(v[0], 32n);
    v[2] = (v[2] + v[3]) & MASK64;
    v[3] = rotl64(v[3], 16n);
    v[3] ^= v[2];
    v[0] = (v[0] + v[3]) & MASK64;
    v[3] = rotl64(v[3], 21n);
    v[3] ^= v[0];
    v[2] = (v[2] + v[1]) & MASK64;
    v[1] = rotl64(v[1], 17n);
    v[1] ^= v[2];
    v[2] = rotl64(v[2], 32n);
  };
  const whole = message.length - (message.length % 8);
  for (let i = 0; i < whole; i += 8) {
    const m = message.readBigUInt64LE(i);
    v[3] ^= m;
    round();
    v[0] ^= m;
  }
  let last = BigInt(message.length & 0xff) << 56n;
  for (let i = whole; i < message.length; i++) last |= BigInt(message[i]) << BigInt(8 * (i - whole));
  v[3] ^= last;
  round();
  v[0] ^= last;
  v[2] ^= 0xffn;
  round();
  round();
  round();
  return v[0] ^ v[1] ^ v[2] ^ v[3];
}

/**
 * A unit's bucket, computed here from the bucketing contract alone (testdata/bucketing.json):
 * (SipHash-1-3(hash key, u32-LE(byte length of seed) ‖ seed ‖ unit) × 10000) >> 64.
 */
export function bucketOf(hashKeyHex, seed, unit) {
  const seedBytes = Buffer.from(seed, "utf8");
  const length = Buffer.alloc(4);
  length.writeUInt32LE(seedBytes.length);
  const hash = siphash13(Buffer.from(hashKeyHex, "hex"), Buffer.concat([length, seedBytes, Buffer.from(unit, "utf8")]));
  return { hash, bucket: Number((hash * 10000n) >> 64n) };
}

/** The variant of a unit's tenant-holdout record (`holdout` or `rest`); undefined without a holdout. */
export function holdoutVariant(config, unit) {
  if (!config.holdout) return undefined;
  return bucketOf(config.hash_key, `holdout:${config.tenant}`, unit).bucket < config.holdout ? "holdout" : "rest";
}
