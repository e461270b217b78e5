/**
 * Shape comparison, shared by the checkpoint reader and the tfjs adapter.
 *
 * @module
 */

/**
 * Whether two shapes are the same, dimension by dimension.
 *
 * @param a A shape.
 * @param b Another.
 * @returns Whether they are equal.
 */
export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
