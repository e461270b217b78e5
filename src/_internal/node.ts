/**
 * What the library needs of Node: its built-in modules, reached
 * synchronously with `process.getBuiltinModule` (Node 20.16+, 22.3+), so
 * that no code path of Deno or the browser imports a `node:` module.
 *
 * @module
 */

interface NodeProcess {
  readonly versions?: { readonly node?: string };
  getBuiltinModule?(id: string): unknown;
}

/**
 * A built-in module of Node, where this runtime is Node (Deno, which also
 * has a `process`, gets `undefined`, as do browsers).
 *
 * @param id The module, e.g. `"node:worker_threads"`.
 * @returns The module, or `undefined`.
 */
export function nodeBuiltin<T>(id: string): T | undefined {
  if ("Deno" in globalThis) return undefined;
  const process = (globalThis as { process?: NodeProcess }).process;
  if (process?.versions?.node === undefined) return undefined;
  return process.getBuiltinModule?.(id) as T | undefined;
}

/** What the pool and the shard workers use of `node:worker_threads`. */
export interface NodeWorkerThreads {
  readonly Worker: new (url: URL) => NodeWorker;
  readonly parentPort: NodeMessagePort | null;
}

/** A `worker_threads` Worker, typed by what the pool uses. */
export interface NodeWorker {
  on(event: "message", listener: (data: unknown) => void): void;
  on(event: "error", listener: (error: Error) => void): void;
  postMessage(message: unknown): void;
  terminate(): unknown;
}

/** A worker's `parentPort`. */
export interface NodeMessagePort {
  on(event: "message", listener: (data: unknown) => void): void;
  off(event: "message", listener: (data: unknown) => void): void;
  postMessage(message: unknown): void;
  close(): void;
}

/**
 * Node's `worker_threads`, where this runtime is Node.
 *
 * @returns The module, or `undefined`.
 */
export function nodeWorkerThreads(): NodeWorkerThreads | undefined {
  return nodeBuiltin<NodeWorkerThreads>("node:worker_threads");
}

/**
 * The cores this process may use: `navigator.hardwareConcurrency`, or in
 * Node 20 (which has no `navigator`) `os.availableParallelism()`.
 *
 * @returns The count, at least 1.
 */
export function availableCores(): number {
  const cores = globalThis.navigator?.hardwareConcurrency ??
    nodeBuiltin<{ availableParallelism(): number }>("node:os")?.availableParallelism();
  return cores ?? 1;
}
