/**
 * Builds src/kernels/wasm/lion.wat into src/kernels/wasm/lion_wasm.ts (`deno task build:wasm`).
 *
 * Four binaries come from the one source: a shared memory import (the
 * store's arenas where SharedArrayBuffer exists) or a plain one, each with
 * relaxed SIMD (the fused-multiply-add path) or "strict", without a relaxed
 * opcode (for runtimes where relaxed SIMD does not validate: Node 20, older
 * browsers). Functions marked `@moment` are written out for float32 and for
 * bfloat16 moments; those marked `@kernel` also for each fma path (the
 * relaxed one only in the relaxed build) and for groups whose lerps both
 * take base m (`_mm`), their `@unroll` bodies four times (`UNROLL_BIT`: the
 * first of the line's 16 elements a body handles, a bit in a mask); those
 * marked `@fma` for each fma path alone (the 8-bit moments' update). They
 * are committed as base64 so users need no build step; a test rebuilds
 * them and compares.
 *
 * @module
 */

import { parseCommandLine } from "./cli.ts";
import wabtInit from "npm:wabt@1.0.39";

const SOURCE = new URL("../src/kernels/wasm/lion.wat", import.meta.url);
const OUTPUT = new URL("../src/kernels/wasm/lion_wasm.ts", import.meta.url);
const FEATURES = { simd: true, relaxed_simd: true, threads: true, multi_value: true };
const SHARED_IMPORT = '(import "env" "memory" (memory 0 65536 shared)) ;; MEMORY';
const PLAIN_IMPORT = '(import "env" "memory" (memory 0 65536)) ;; MEMORY';

/** The four binaries built from `lion.wat`. */
export interface LionWasmBinaries {
  /** Relaxed SIMD, shared memory. */
  shared: Uint8Array;
  /** Relaxed SIMD, plain memory. */
  plain: Uint8Array;
  /** No relaxed opcode, shared memory. */
  strictShared: Uint8Array;
  /** No relaxed opcode, plain memory. */
  strictPlain: Uint8Array;
}

/** The lines between `;; @name {` and `;; @name }`, each section passed through `edit`. */
function editSections(wat: string, name: string, edit: (section: string) => string): string {
  const open = `;; @${name} {`;
  const close = `;; @${name} }`;
  let out = "";
  let at = 0;
  for (;;) {
    const start = wat.indexOf(open, at);
    if (start < 0) return out + wat.slice(at);
    const end = wat.indexOf(close, start);
    if (end < 0) throw new Error(`lion.wat: ${open} is never closed`);
    out += wat.slice(at, start) + edit(wat.slice(start + open.length, end));
    at = end + close.length;
  }
}

/** Where the parenthesized form that opens at `start` closes (one past it). */
function formEnd(text: string, start: number): number {
  let depth = 0;
  for (let i = start; i < text.length; i++) {
    if (text[i] === "(") depth++;
    else if (text[i] === ")" && --depth === 0) return i + 1;
  }
  throw new Error(`lion.wat: unbalanced form at ${text.slice(start, start + 40)}`);
}

/** Replaces every `(NAME ...)` form by `expand(inner text)`. */
function expandMacro(text: string, name: string, expand: (inner: string) => string): string {
  const head = `(${name} `;
  for (let at = text.indexOf(head); at >= 0; at = text.indexOf(head)) {
    const end = formEnd(text, at);
    text = text.slice(0, at) + expand(text.slice(at + head.length, end - 1).trim()) +
      text.slice(end);
  }
  return text;
}

/** `OFFSET_M_k` (the moments of a line's vector k) at `bytes` per vector of four. */
function momentOffsets(text: string, bytes: number): string {
  return text.replace(/OFFSET_M_(\d)/g, (_, k) => String(Number(k) * bytes))
    .replaceAll("LINE_MOMENT_BYTES", String(4 * bytes));
}

/** `offset=N address` as `["offset=N", address]` (no offset: `""`). */
function splitOffset(address: string): [string, string] {
  const found = address.match(/^(offset=\d+)\s+([\s\S]*)$/);
  return found ? [found[1]!, found[2]!] : ["", address];
}

/** A `@moment` section for float32 moments. */
function float32Moments(section: string): string {
  let text = momentOffsets(section.replaceAll("{M}", "").replaceAll("M_BYTES", "16"), 16);
  text = expandMacro(text, "LOAD_M", (address) => `(v128.load ${address})`);
  return expandMacro(text, "STORE_M", (inner) => {
    const [local, address] = splitLocal(inner);
    return `(v128.store ${address} (local.get ${local}))`;
  });
}

/**
 * A `@moment` section for bfloat16 moments: four are loaded zero-extended
 * to 32 bits and shifted up (a bfloat16 is a float32's high half: two
 * operations); stores round to nearest even (NaN as 0x7FC0, c10's rule),
 * keep the high halves, and leave the local holding the rounded values,
 * which later reads of it need. Where relaxed SIMD is allowed the NaN lanes
 * are chosen with `i32x4.relaxed_laneselect` (one blend: its mask, a
 * comparison's, is all ones or all zeros a lane, so every choice of the
 * relaxed semantics gives the same result); elsewhere with `v128.bitselect`.
 */
function bfloat16Moments(section: string, path: FmaPath = "exact"): string {
  let text = momentOffsets(section.replaceAll("{M}", "_bf16").replaceAll("M_BYTES", "8"), 8);
  text = expandMacro(
    text,
    "LOAD_M",
    (address) => `(i32x4.shl (v128.load16x4_u ${address}) (i32.const 16))`,
  );
  return expandMacro(text, "STORE_M", (inner) => {
    const [local, target] = splitLocal(inner);
    const [offset, address] = splitOffset(target);
    const get = `(local.get ${local})`;
    const select = path === "relaxed" ? "i32x4.relaxed_laneselect" : "v128.bitselect";
    return `(local.set ${local} (${select} (i32x4.splat (i32.const 0x7FC00000))
      (i32x4.add ${get} (i32x4.add (i32x4.splat (i32.const 0x7FFF))
        (v128.and (i32x4.shr_u ${get} (i32.const 16)) (i32x4.splat (i32.const 1)))))
      (f32x4.ne ${get} ${get})))
    (v128.store64_lane ${offset} 0 ${address}
      (i8x16.shuffle 2 3 6 7 10 11 14 15 2 3 6 7 10 11 14 15 ${get} ${get}))
    (local.set ${local} (v128.and ${get} (i32x4.splat (i32.const -65536))))`;
  });
}

function splitLocal(inner: string): [string, string] {
  const space = inner.search(/\s/);
  return [inner.slice(0, space), inner.slice(space).trim()];
}

/** The top-level forms of `text` (a macro's operands). */
function splitForms(text: string): string[] {
  const forms: string[] = [];
  let at = 0;
  while (at < text.length) {
    if (/\s/.test(text[at]!)) {
      at++;
      continue;
    }
    const end = text[at] === "(" ? formEnd(text, at) : text.slice(at).search(/\s|$/) + at;
    forms.push(text.slice(at, end));
    at = end;
  }
  return forms;
}

/** How a `@kernel` section computes torch's fused multiply-add. */
type FmaPath = "relaxed" | "exact";

/**
 * `(FMA $dst $cv $cw d b)`: `$dst = c · d + b` rounded once (`$cv` the
 * coefficient as f32x4, `$cw` as f64x2); `(SUM $acc x y)`: `$acc += x · y`
 * in float32 lanes (fused on the relaxed path, rounded apart on the exact).
 */
function expandFma(text: string, path: FmaPath): string {
  // (FMA_SIGN ...): as FMA where only the result's sign is used (the update direction)
  text = expandMacro(text, "FMA_SIGN", (inner) => {
    const [dst, cv, cw, d, b] = splitForms(inner);
    if (path === "relaxed") {
      return `(local.set ${dst} (f32x4.relaxed_madd (local.get ${cv}) ${d} ${b}))`;
    }
    return fmaSign(dst!, cv!, `(local.get ${cw})`, d!, b!);
  });
  text = expandMacro(text, "FMA", (inner) => {
    const [dst, cv, cw, d, b] = splitForms(inner);
    if (path === "relaxed") {
      return `(local.set ${dst} (f32x4.relaxed_madd (local.get ${cv}) ${d} ${b}))`;
    }
    return fmaExact(dst!, `(local.get ${cw})`, d!, b!);
  });
  return expandMacro(text, "SUM", (inner) => {
    const [acc, x, y] = splitForms(inner);
    return path === "relaxed"
      ? `(local.set ${acc} (f32x4.relaxed_madd ${x} ${y} (local.get ${acc})))`
      : `(local.set ${acc} (f32x4.add (local.get ${acc}) (f32x4.mul ${x} ${y})))`;
  });
}

/**
 * The exact fma without a hardware one, fast: float64 lanes hold \`c·d\`
 * exactly (24-bit factors), and their sum with \`b\` rounded to float64
 * then to float32 is correctly rounded unless the float64 sum is exactly a
 * float32 midpoint (its low 29 bits 0x10000000) or lies in float32's
 * subnormal range: a vector with such a lane (rare) takes \`$fma_exact\`'s
 * round-to-odd instead. Scratch locals: $fx_d, $fx_b, $fx_lo, $fx_hi.
 */
function fmaExact(dst: string, c64: string, d: string, b: string): string {
  const half = (v: string, high: boolean) =>
    high
      ? `(f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 ${v} ${v}))`
      : `(f64x2.promote_low_f32x4 ${v})`;
  const sum = (high: boolean) =>
    `(f64x2.add (f64x2.mul ${c64} ${half("(local.get $fx_d)", high)}) ${
      half("(local.get $fx_b)", high)
    })`;
  const suspect = (s: string) =>
    `(v128.or
      (i64x2.eq (v128.and ${s} (i64x2.splat (i64.const 0x1FFFFFFF))) (i64x2.splat (i64.const 0x10000000)))
      (v128.and (f64x2.lt (f64x2.abs ${s}) (f64x2.splat (f64.const 0x1p-126)))
        (f64x2.ne ${s} (f64x2.splat (f64.const 0)))))`;
  return `(local.set $fx_d ${d})
        (local.set $fx_b ${b})
        (local.set $fx_lo ${sum(false)})
        (local.set $fx_hi ${sum(true)})
        (local.set ${dst}
          (if (result v128)
            (v128.any_true (v128.or ${suspect("(local.get $fx_lo)")} ${
    suspect("(local.get $fx_hi)")
  }))
            (then (call $fma_exact ${c64} (local.get $fx_d) (local.get $fx_b)))
            (else (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
              (f32x4.demote_f64x2_zero (local.get $fx_lo))
              (f32x4.demote_f64x2_zero (local.get $fx_hi))))))`;
}

/**
 * A value with the sign of \`c·d + b\` rounded once, for the update
 * direction, whose sign alone is used: \`r = (c·d) + b\` in float32, two
 * roundings. The product's rounding moves the sum by at most 2^-24·|c·d|
 * (plus 2^-150 where it underflows), so where \`|r| > 2^-22·|c·d|\` and
 * \`|r| ≥ 2^-100\`, or \`d = 0\` (then \`r = b\` exactly), \`r\` has the exact
 * result's sign; a vector with another lane (a near-cancellation, NaN,
 * ±Infinity) takes \`$fma_exact\`. Scratch locals: $fx_d, $fx_b, $fx_lo.
 */
function fmaSign(dst: string, cv: string, c64: string, d: string, b: string): string {
  const abs = (v: string) => `(f32x4.abs ${v})`;
  return `(local.set $fx_d ${d})
        (local.set $fx_b ${b})
        (local.set $fx_lo (f32x4.mul (local.get ${cv}) (local.get $fx_d)))
        (local.set ${dst} (f32x4.add (local.get $fx_lo) (local.get $fx_b)))
        (if (i32.eqz (i32x4.all_true (v128.or
            (f32x4.eq (local.get $fx_d) (f32x4.splat (f32.const 0)))
            (v128.and
              (f32x4.gt ${abs(`(local.get ${dst})`)} (f32x4.mul ${abs("(local.get $fx_lo)")}
                (f32x4.splat (f32.const 0x1p-22))))
              (f32x4.ge ${abs(`(local.get ${dst})`)} (f32x4.splat (f32.const 0x1p-100)))))))
          (then (local.set ${dst} (call $fma_exact ${c64} (local.get $fx_d) (local.get $fx_b)))))`;
}

/**
 * A `@kernel` section: its `@unroll` bodies four times (`OFFSET_V`: the
 * vector's byte offset in the line), then each fma path (the relaxed one
 * marked `@relaxed`) and each moment type.
 */
function kernels(section: string): string {
  section = editSections(
    section,
    "unroll",
    (body) =>
      [0, 1, 2, 3].map((k) =>
        body.replaceAll("OFFSET_V", String(16 * k)).replaceAll("OFFSET_M", `OFFSET_M_${k}`)
          .replaceAll("UNROLL_BIT", String(4 * k))
      ).join(""),
  );
  // (BASE $sel): a lerp's base, g where the mask is set, else m; "_mm": m
  const bases = (text: string) =>
    expandMacro(
      text.replaceAll("{B}", ""),
      "BASE",
      (sel) => `(v128.bitselect (local.get $gv) (local.get $mv) (local.get ${sel}))`,
    ) + expandMacro(text.replaceAll("{B}", "_mm"), "BASE", () => "(local.get $mv)");
  section = bases(section);
  const relaxed = expandFma(section.replaceAll("{F}", ""), "relaxed");
  const exact = expandFma(section.replaceAll("{F}", "_exact"), "exact");
  const moments = (text: string, path: FmaPath) =>
    float32Moments(text) + bfloat16Moments(text, path);
  return `;; @relaxed {${moments(relaxed, "relaxed")};; @relaxed }${moments(exact, "exact")}`;
}

/**
 * The source with its macros expanded: `@moment` sections twice, `@relaxed`
 * sections kept (relaxed) or dropped (strict).
 *
 * @param wat The source.
 * @param relaxed Whether to keep the relaxed-SIMD sections.
 * @returns The text wabt compiles.
 */
export function expandLionWat(wat: string, relaxed: boolean): string {
  // (an @fma section: each fma path only; the relaxed one marked @relaxed)
  const fmaPaths = (section: string) =>
    `;; @relaxed {${expandFma(section.replaceAll("{F}", ""), "relaxed")};; @relaxed }${
      expandFma(section.replaceAll("{F}", "_exact"), "exact")
    }`;
  const expanded = editSections(editSections(wat, "fma", fmaPaths), "kernel", kernels);
  const moments = editSections(expanded, "moment", (s) => float32Moments(s) + bfloat16Moments(s));
  return editSections(moments, "relaxed", (section) => relaxed ? section : "");
}

/**
 * Compiles the four binaries from `wat`.
 *
 * @param wat The source.
 * @returns The binaries.
 */
export async function buildLionWasm(wat: string): Promise<LionWasmBinaries> {
  if (!wat.includes(SHARED_IMPORT)) throw new Error("lion.wat lost its MEMORY import line");
  const wabt = await wabtInit();
  const compile = (text: string, features: Record<string, boolean>) => {
    const module = wabt.parseWat("lion.wat", text, features);
    try {
      module.resolveNames();
      // wabt.js validates with the features it is given (its typings miss the parameter)
      (module.validate as (this: unknown, features: unknown) => void).call(module, features);
      return new Uint8Array(module.toBinary({ write_debug_names: false }).buffer);
    } finally {
      module.destroy();
    }
  };
  const relaxed = expandLionWat(wat, true);
  // the strict build is validated without relaxed SIMD: a relaxed opcode left in it fails here
  const strict = expandLionWat(wat, false);
  const strictFeatures = { ...FEATURES, relaxed_simd: false };
  return {
    shared: compile(relaxed, FEATURES),
    plain: compile(relaxed.replace(SHARED_IMPORT, PLAIN_IMPORT), FEATURES),
    strictShared: compile(strict, strictFeatures),
    strictPlain: compile(strict.replace(SHARED_IMPORT, PLAIN_IMPORT), strictFeatures),
  };
}

function base64(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/**
 * The TypeScript module that embeds the binaries.
 *
 * @param binaries What {@linkcode buildLionWasm} built.
 * @returns The module's text.
 */
export function renderLionWasmModule(binaries: LionWasmBinaries): string {
  return `// Generated by \`deno task build:wasm\` from src/kernels/wasm/lion.wat: do not edit.

/** The kernel module with relaxed SIMD, importing a shared memory, base64. */
export const LION_WASM_SHARED: string =
  "${base64(binaries.shared)}";

/** The kernel module with relaxed SIMD, importing a plain memory, base64. */
export const LION_WASM_PLAIN: string =
  "${base64(binaries.plain)}";

/** The kernel module without relaxed SIMD, importing a shared memory, base64. */
export const LION_WASM_STRICT_SHARED: string =
  "${base64(binaries.strictShared)}";

/** The kernel module without relaxed SIMD, importing a plain memory, base64. */
export const LION_WASM_STRICT_PLAIN: string =
  "${base64(binaries.strictPlain)}";
`;
}

if (import.meta.main) {
  parseCommandLine(
    "build:wasm",
    "deno task build:wasm\n\nRebuilds src/kernels/wasm/lion_wasm.ts from src/kernels/wasm/lion.wat with npm's wabt: a\nbuild with relaxed SIMD and a strict one, each for shared and plain memory.",
    {},
  );
  const binaries = await buildLionWasm(await Deno.readTextFile(SOURCE));
  await Deno.writeTextFile(OUTPUT, renderLionWasmModule(binaries));
  const sizes = Object.values(binaries).map((b) => b.length).join(" + ");
  console.log(`wrote ${OUTPUT.pathname}: ${sizes} bytes`);
}
