/**
 * The bench's SVG chart: throughput (G elements/s) per implementation,
 * grouped by size, as horizontal bars. Plain SVG, no dependency.
 *
 * @module
 */

interface ChartRow {
  label: string;
  gElementsPerS: number;
}

const PALETTE = [
  "#1f77b4",
  "#aec7e8",
  "#ff7f0e",
  "#ffbb78",
  "#2ca02c",
  "#98df8a",
  "#d62728",
  "#9467bd",
  "#8c564b",
  "#e377c2",
  "#7f7f7f",
  "#bcbd22",
];

function escape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/**
 * Renders grouped horizontal bars.
 *
 * @param results One group per size.
 * @returns The SVG document.
 */
export function renderChart(results: { size: string; rows: ChartRow[] }[]): string {
  const barHeight = 14, gap = 4, groupGap = 26, left = 250, width = 560, top = 40;
  const max = Math.max(...results.flatMap((r) => r.rows.map((row) => row.gElementsPerS)), 1e-9);
  const parts: string[] = [];
  let y = top;
  for (const result of results) {
    parts.push(`<text x="10" y="${y - 6}" font-weight="bold">${escape(result.size)}</text>`);
    result.rows.forEach((row, i) => {
      const w = Math.max(1, (row.gElementsPerS / max) * width);
      parts.push(
        `<text x="${left - 6}" y="${y + barHeight - 3}" text-anchor="end">${
          escape(row.label)
        }</text>`,
        `<rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="${barHeight}" fill="${
          PALETTE[i % PALETTE.length]
        }"/>`,
        `<text x="${left + w + 4}" y="${y + barHeight - 3}">${row.gElementsPerS.toFixed(3)}</text>`,
      );
      y += barHeight + gap;
    });
    y += groupGap;
  }
  const height = y;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${
    left + width + 80
  }" height="${height}" font-family="sans-serif" font-size="11">
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="20" font-size="14" font-weight="bold">DecoupledLionW step throughput (G elements/s, higher is better)</text>
${parts.join("\n")}
</svg>
`;
}
