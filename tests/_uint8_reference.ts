/**
 * The scalar reference of the 8-bit rule, written here on its own: one
 * tensor's step with bitsandbytes' 8-bit rule (moments kept as codes and
 * scales) or the float32 rule, timm's caution where asked. Fixtures from
 * torch ops hold it to bitsandbytes' rule (uint8_lion_test.ts); the
 * engines are held to it (uint8_momentum_test.ts).
 *
 * @module
 */

import { DYNAMIC_MAP } from "../src/store/dynamic_map.ts";
import { cautionFactor } from "../src/kernels/kernel.ts";
import { quantizeUint8Block, UINT8_BLOCK } from "../src/store/uint8_moments.ts";
import { fmaF32, lerpF32, signF32 } from "../src/_internal/float32.ts";

/** The float32 constants a group's hyperparameters give, as the library rounds them. */
export function constants(lr: number, betas: [number, number], weightDecay: number) {
  return {
    lr: Math.fround(lr),
    beta1: Math.fround(betas[0]),
    beta2: Math.fround(betas[1]),
    directionWeight: Math.fround(1 - betas[0]),
    momentWeight: Math.fround(1 - betas[1]),
    decay: Math.fround(1 - weightDecay),
  };
}
/** The float32 constants of a step. */
export type Constants = ReturnType<typeof constants>;

/**
 * The scalar reference of one tensor's step: bitsandbytes' 8-bit rule for
 * 4,096 elements or more (moments kept as codes and scales here), the
 * float32 rule below; timm's caution where asked.
 */
export class ReferenceTensor {
  readonly p: Float32Array;
  readonly m: Float32Array;
  readonly codes: Uint8Array;
  readonly absmax: Float32Array;
  /** Whether its moments are 8-bit. */
  readonly uint8: boolean;
  /**
   * @param initial The parameters.
   * @param uint8 Whether its moments are 8-bit (bitsandbytes': from 4,096 elements).
   */
  constructor(initial: Float32Array, uint8: boolean = initial.length >= 4096) {
    this.uint8 = uint8;
    this.p = initial.slice();
    this.m = new Float32Array(initial.length);
    this.codes = new Uint8Array(initial.length);
    this.absmax = new Float32Array(Math.ceil(initial.length / UINT8_BLOCK));
  }

  /** The moments as float32 (8-bit: dequantized). */
  moments(): Float32Array {
    if (!this.uint8) return this.m.slice();
    return Float32Array.from(
      this.codes,
      (q, i) => Math.fround(DYNAMIC_MAP[q]! * this.absmax[Math.floor(i / UINT8_BLOCK)]!),
    );
  }

  direction(m: number, g: number, k: Constants): number {
    return this.uint8
      ? Math.fround(Math.fround(m * k.beta1) + Math.fround(g * k.directionWeight))
      : lerpF32(m, g, k.directionWeight);
  }

  step(g: Float32Array, k: Constants, cautious: boolean): void {
    const m = this.moments();
    let factor = 0;
    if (cautious) {
      const agreeing = m.filter((mi, i) => this.direction(mi, g[i]!, k) * g[i]! > 0).length;
      factor = cautionFactor(agreeing, m.length);
    }
    const next = new Float32Array(m.length);
    for (let i = 0; i < m.length; i++) {
      const c = this.direction(m[i]!, g[i]!, k);
      const decayed = Math.fround(this.p[i]! * k.decay);
      this.p[i] = cautious
        ? fmaF32(-k.lr, signF32(c) * (c * g[i]! > 0 ? factor : 0), decayed)
        : Math.fround(decayed - k.lr * signF32(c));
      next[i] = this.uint8
        ? fmaF32(k.momentWeight, g[i]!, Math.fround(m[i]! * k.beta2))
        : lerpF32(m[i]!, g[i]!, k.momentWeight);
    }
    if (!this.uint8) return this.m.set(next);
    this.quantize(next);
  }

  /** Stores `moments` as codes and scales, block by block (the tail by its division). */
  quantize(moments: Float32Array): void {
    for (let b = 0; b < this.absmax.length; b++) {
      const [start, end] = [b * UINT8_BLOCK, Math.min(moments.length, (b + 1) * UINT8_BLOCK)];
      this.absmax[b] = quantizeUint8Block(
        moments.subarray(start, end),
        this.codes.subarray(start, end),
        end - start === UINT8_BLOCK,
      );
    }
  }
}
