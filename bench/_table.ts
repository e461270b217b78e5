/**
 * The bench's tables: aligned plain text (for a terminal or a log) or
 * GitHub markdown (`--markdown`, for docs and notes).
 *
 * @module
 */

/** How a column lines up. */
export type Align = "left" | "right";

/**
 * Renders a table.
 *
 * @param header Column titles.
 * @param rows Cells, as text.
 * @param align Each column's alignment.
 * @param markdown GitHub markdown instead of aligned text.
 * @returns The lines of the table.
 */
export function renderTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  align: readonly Align[],
  markdown: boolean,
): string[] {
  const widths = header.map((title, c) =>
    Math.max(title.length, ...rows.map((row) => (row[c] ?? "").length))
  );
  const pad = (text: string, c: number) =>
    align[c] === "right" ? text.padStart(widths[c]!) : text.padEnd(widths[c]!);
  const line = (cells: readonly string[]) =>
    markdown ? `| ${cells.map(pad).join(" | ")} |` : cells.map(pad).join("  ").trimEnd();
  const rule = markdown
    ? `|${
      widths.map((w, c) => (align[c] === "right" ? `${"-".repeat(w + 1)}:` : "-".repeat(w + 2)))
        .join("|")
    }|`
    : widths.map((w) => "-".repeat(w)).join("  ");
  return [line(header), rule, ...rows.map(line)];
}
