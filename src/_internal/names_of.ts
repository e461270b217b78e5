/**
 * Name lists derived from a union type, so each union is written once.
 *
 * @module
 */

/**
 * The keys of a record with one entry per member of `T`: the compiler checks
 * there are no more and no fewer, so the list stays the union's members.
 *
 * @param members One `0` per member of the union.
 * @returns The members, frozen, in the record's order.
 */
export function namesOf<T extends string>(members: Record<T, 0>): readonly T[] {
  return Object.freeze(Object.keys(members) as T[]);
}
