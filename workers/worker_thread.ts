/**
 * One worker thread behind one interface: a Web Worker (Deno, browsers) or
 * a `worker_threads` Worker (Node). Both share a `SharedArrayBuffer` and
 * `Atomics` alike, so the pool and the control block are the same code.
 *
 * @module
 */

import { nodeWorkerThreads } from "../src/_internal/node.ts";

/** A worker thread, as the pool uses it. */
export interface WorkerThread {
  /** Calls `listener` with each message's data. */
  onMessage(listener: (data: unknown) => void): void;
  /** Calls `listener` when the worker dies of an uncaught error. */
  onError(listener: (message: string) => void): void;
  /** Posts a message (a SharedArrayBuffer or shared memory in it is shared, not copied). */
  postMessage(message: unknown): void;
  /** Ends the thread at once. */
  terminate(): void;
}

/**
 * Whether this runtime has worker threads: a global `Worker`, or Node's
 * `worker_threads`.
 *
 * @returns `true` when {@linkcode spawnWorkerThread} can start one.
 */
export function workerThreadsAvailable(): boolean {
  return typeof Worker === "function" || nodeWorkerThreads() !== undefined;
}

/**
 * Starts a module worker thread.
 *
 * @param url The worker's module.
 * @returns The thread.
 */
export function spawnWorkerThread(url: URL): WorkerThread {
  const threads = typeof Worker === "function" ? undefined : nodeWorkerThreads();
  if (threads !== undefined) {
    const worker = new threads.Worker(url);
    return {
      onMessage: (listener) => worker.on("message", listener),
      onError: (listener) => worker.on("error", (error) => listener(error.message)),
      postMessage: (message) => worker.postMessage(message),
      terminate: () => void worker.terminate(),
    };
  }
  const worker = new Worker(url, { type: "module" });
  return {
    onMessage: (listener) => (worker.onmessage = (event) => listener(event.data)),
    // addEventListener, not onerror: Deno lets an uncaught worker error
    // end the process unless a listener prevents it
    onError: (listener) =>
      worker.addEventListener("error", (event: ErrorEvent) => {
        event.preventDefault();
        listener(event.message);
      }),
    postMessage: (message) => worker.postMessage(message),
    terminate: () => worker.terminate(),
  };
}
