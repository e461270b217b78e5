/**
 * Seams for this package's own tests; not exported from mod.ts and not part
 * of the API. Tests swap the shard worker's module for one that fails on
 * purpose (tests/_faulty_shard_worker.ts); nothing else reads these.
 *
 * @module
 */

/** What tests may swap. */
export const testSeams: { shardWorkerUrl: URL | undefined } = { shardWorkerUrl: undefined };
