/**
 * Checks the object keys of JSON text from an untrusted file before it is
 * parsed: `JSON.parse` keeps the last of two equal keys without a word, and
 * a `__proto__` or `constructor` key is a trap for code that copies objects.
 *
 * @module
 */

const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(["__proto__", "constructor", "prototype"]);

/** Where a JSON string token starting at `start` (its opening quote) ends, past the closing quote. */
function stringEnd(text: string, start: number): number {
  for (let i = start + 1; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5c) i++; // a backslash escapes the next character
    else if (c === 0x22) return i + 1;
  }
  return text.length;
}

/**
 * Throws when an object in `text` has a key twice or a forbidden key. Only
 * keys are checked; the syntax is left to `JSON.parse`.
 *
 * @param text JSON text.
 * @param what What the text is, for messages ("the header").
 * @throws {Error} Naming the key.
 */
export function checkJsonKeys(text: string, what: string): void {
  // one frame per open container: the keys of an object, null for an array
  const frames: (Set<string> | null)[] = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      const end = stringEnd(text, i);
      const frame = frames.at(-1);
      if (expectKey && frame) {
        let key: string;
        try {
          key = JSON.parse(text.slice(i, end));
        } catch {
          return; // malformed: JSON.parse will say where
        }
        if (FORBIDDEN_KEYS.has(key)) throw new Error(`${what} has a forbidden key "${key}"`);
        if (frame.has(key)) throw new Error(`${what} has the key "${key}" twice in one object`);
        frame.add(key);
        expectKey = false;
      }
      i = end - 1;
    } else if (c === "{") {
      frames.push(new Set());
      expectKey = true;
    } else if (c === "[") {
      frames.push(null);
    } else if (c === "}" || c === "]") {
      frames.pop();
    } else if (c === ",") {
      expectKey = frames.at(-1) instanceof Set;
    }
  }
}

/**
 * `JSON.parse` after {@linkcode checkJsonKeys}.
 *
 * @param text JSON text.
 * @param what What the text is, for messages.
 * @returns The value.
 * @throws {Error} When a key is repeated or forbidden, or the text is not JSON.
 */
export function parseUntrustedJson(text: string, what: string): unknown {
  checkJsonKeys(text, what);
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new Error(`${what} is not valid JSON: ${(error as Error).message}`);
  }
}
