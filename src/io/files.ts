/**
 * Whole-file reads and atomic writes, on Deno's file API or Node's
 * `node:fs/promises` (reached through `process.getBuiltinModule`, as the
 * worker threads are, so no Deno or browser path imports `node:`). A
 * browser has neither: there, checkpoints are bytes (`encodeCheckpoint`).
 *
 * @module
 */

import { nodeBuiltin } from "../_internal/node.ts";

/** What the writes use of `node:fs/promises`. */
interface NodeFs {
  readFile(path: string): Promise<Uint8Array>;
  open(path: string, flags: string): Promise<NodeFileHandle>;
  rename(from: string, to: string): Promise<void>;
  rm(path: string, options: { force: boolean }): Promise<void>;
}

interface NodeFileHandle {
  write(bytes: Uint8Array): Promise<{ bytesWritten: number }>;
  datasync(): Promise<void>;
  close(): Promise<void>;
}

/** The file API of this runtime. */
interface Files {
  read(path: string): Promise<Uint8Array>;
  /** Creates `path` (failing if it exists), writes `bytes`, flushes them to disk. */
  create(path: string, bytes: Uint8Array): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  remove(path: string): Promise<void>;
}

function denoFiles(): Files | undefined {
  const deno = (globalThis as { Deno?: typeof Deno }).Deno;
  if (deno?.open === undefined) return undefined;
  return {
    read: (path) => deno.readFile(path),
    async create(path, bytes) {
      const file = await deno.open(path, { write: true, createNew: true });
      try {
        let written = 0;
        while (written < bytes.length) written += await file.write(bytes.subarray(written));
        await file.syncData();
      } finally {
        file.close();
      }
    },
    rename: (from, to) => deno.rename(from, to),
    remove: (path) => deno.remove(path),
  };
}

function nodeFiles(): Files | undefined {
  const fs = nodeBuiltin<NodeFs>("node:fs/promises");
  if (fs === undefined) return undefined;
  return {
    read: async (path) => new Uint8Array(await fs.readFile(path)),
    async create(path, bytes) {
      const file = await fs.open(path, "wx");
      try {
        let written = 0;
        while (written < bytes.length) {
          written += (await file.write(bytes.subarray(written))).bytesWritten;
        }
        await file.datasync();
      } finally {
        await file.close();
      }
    },
    rename: (from, to) => fs.rename(from, to),
    remove: (path) => fs.rm(path, { force: true }),
  };
}

/** Deno's or Node's file API; a clear error elsewhere. */
function files(action: string): Files {
  const found = denoFiles() ?? nodeFiles();
  if (found === undefined) {
    throw new TypeError(
      `Cannot ${action} as this runtime has no file system (Deno or Node): use encodeCheckpoint() and decodeCheckpoint() with bytes`,
    );
  }
  return found;
}

/**
 * The bytes of a file.
 *
 * @param path The file.
 * @returns Its bytes.
 */
export function readWholeFile(path: string): Promise<Uint8Array> {
  return files("read a checkpoint file").read(path);
}

/**
 * Writes `bytes` to `path` atomically: a temporary file in the same folder,
 * flushed to disk, then renamed over `path`. Nothing is left behind.
 *
 * @param path The file (replaced if it exists).
 * @param bytes What to write.
 */
export async function writeAtomically(path: string, bytes: Uint8Array): Promise<void> {
  const fs = files("write a checkpoint file");
  // the temporary file sits beside the target: a rename within one folder is atomic
  const slash = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
  const folder = path.slice(0, slash + 1);
  const temporary = `${folder}.${path.slice(slash + 1)}.${crypto.randomUUID()}.tmp`;
  try {
    await fs.create(temporary, bytes);
    await fs.rename(temporary, path);
  } catch (error) {
    await fs.remove(temporary).catch(() => {});
    throw error;
  }
}
