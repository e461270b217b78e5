/**
 * Seeded randomness for the demo: the same seed gives the same
 * initialisation, batches and samples in Deno and in a page.
 *
 * @module
 */

/** A uniform generator on [0, 1) (mulberry32: 32 bits of state, fast, well mixed). */
export type Random = () => number;

/**
 * A generator seeded by `seed` and, optionally, a stream (the step of a
 * batch, say), so that any step's randomness can be drawn without the steps
 * before it: a resumed run draws what an uninterrupted one would.
 *
 * @param seed The run's seed.
 * @param stream Which stream of that seed.
 * @returns The generator.
 */
export function seededRandom(seed: number, stream = 0): Random {
  let state = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(stream + 1, 0xc2b2ae35);
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A standard normal draw (Box–Muller).
 *
 * @param random The uniform generator.
 * @returns The draw.
 */
export function normal(random: Random): number {
  const u = 1 - random(); // (0, 1]: log(0) never happens
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

/**
 * Shuffles `items` in place (Fisher–Yates).
 *
 * @param items The items.
 * @param random The generator.
 * @returns `items`.
 */
export function shuffle<T>(items: T[], random: Random): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}
