/**
 * How the bench's in-process rows warm up and time their steps.
 *
 * @module
 */

/**
 * Runs at least `minSteps` steps and at least `minMs` milliseconds of them,
 * so that workers have started and their code has tiered up to optimized
 * machine code (a real training run keeps its workers for thousands of steps).
 *
 * @param step One step.
 * @param minSteps Steps at least.
 * @param minMs Milliseconds at least.
 */
export async function warmUp(
  step: () => Promise<unknown> | unknown,
  minSteps: number,
  minMs: number,
): Promise<void> {
  const start = performance.now();
  for (let i = 0; i < minSteps || performance.now() - start < minMs; i++) await step();
}

/**
 * Times up to `steps` steps. A slow row (gpu.js on a CPU takes seconds a
 * step at 64M elements) stops after 3 once it has spent `budgetMs`, so it
 * does not hold the whole run up.
 *
 * @param steps Steps at most.
 * @param step One step.
 * @param budgetMs Milliseconds after which a row stops, once it has 3 steps.
 * @returns Each step's milliseconds.
 */
export async function timeSteps(
  steps: number,
  step: () => Promise<unknown> | unknown,
  budgetMs: number,
): Promise<number[]> {
  const ms: number[] = [];
  let spent = 0;
  for (let i = 0; i < steps && (i < 3 || spent < budgetMs); i++) {
    const t0 = performance.now();
    await step();
    ms.push(performance.now() - t0);
    spent += ms[i]!;
  }
  return ms;
}

/**
 * The median of `values` (the mean of the middle two for an even count).
 *
 * @param values At least one value.
 * @returns The median.
 */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
