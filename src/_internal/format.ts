/**
 * Shows a value the way error messages quote it: numbers as JavaScript
 * prints them (NaN, Infinity, -0 stays visible), strings quoted, arrays and
 * plain objects as short JSON-like text.
 *
 * @param value Any value.
 * @returns A short description.
 */
export function formatValue(value: unknown): string {
  if (typeof value === "number") return Object.is(value, -0) ? "-0" : String(value);
  if (typeof value === "string") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(formatValue).join(", ")}]`;
  if (ArrayBuffer.isView(value)) {
    return `${value.constructor.name}(${(value as unknown as ArrayLike<unknown>).length})`;
  }
  if (value === null || typeof value !== "object") return String(value);
  return Object.prototype.toString.call(value);
}
