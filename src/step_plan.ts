/**
 * The step plan: which elements a step touches, cut into kernel segments.
 *
 * Each parameter with a gradient is cut into blocks of
 * {@linkcode BLOCK_ELEMENTS} counted from its first element. A block is the
 * unit of partial sums: whatever thread or worker computes a block, it sums
 * it in the same order, and the calling thread adds a parameter's blocks in
 * block order, so metrics do not depend on how blocks are shared out.
 *
 * @module
 */

import type { KernelSegment } from "./kernel.ts";
import type { Parameter, ParameterSlots } from "./parameter.ts";

/** Elements per block of partial sums (64 KiB of float32). */
export const BLOCK_ELEMENTS = 16_384;

/** A parameter that takes part in a step. */
export interface ActiveParameter {
  /** The parameter. */
  readonly param: Parameter;
  /** Its slots in the store. */
  readonly slots: ParameterSlots;
  /** Index of its group. */
  readonly group: number;
}

/** A parameter's place in the plan. */
export interface PlannedParameter extends ActiveParameter {
  /** Slot of its first block. */
  readonly firstSlot: number;
  /** Number of blocks (segments). */
  readonly slotCount: number;
}

/** The segments of one step, grouped by arena. */
export interface StepPlan {
  /** The parameters, in group order then parameter order. */
  readonly params: readonly PlannedParameter[];
  /** Total number of segments (slots). */
  readonly slotCount: number;
  /** The segments of each arena, by arena index. */
  readonly byArena: readonly (readonly KernelSegment[])[];
}

/**
 * Cuts the active parameters into block segments.
 *
 * @param active The parameters that have a gradient and require one.
 * @param arenaCount The store's number of arenas.
 * @param blockElements Elements per block (tests use small blocks).
 * @returns The plan.
 */
export function planStep(
  active: readonly ActiveParameter[],
  arenaCount: number,
  blockElements: number = BLOCK_ELEMENTS,
): StepPlan {
  const byArena: KernelSegment[][] = Array.from({ length: arenaCount }, () => []);
  const params: PlannedParameter[] = [];
  let slot = 0;
  for (const entry of active) {
    const { slots, group } = entry;
    const size = slots.dataView.length;
    const firstSlot = slot;
    for (let start = 0; start < size; start += blockElements) {
      byArena[slots.arena]!.push({
        data: slots.data + start,
        grad: slots.grad + start,
        expAvg: slots.expAvg + start,
        length: Math.min(blockElements, size - start),
        group,
        slot: slot++,
      });
    }
    params.push({ ...entry, firstSlot, slotCount: slot - firstSlot });
  }
  return { params, slotCount: slot, byArena };
}
