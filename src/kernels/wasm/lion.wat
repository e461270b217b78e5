;; The `wasm` kernel: the DecoupledLionW update with f32x4 SIMD, in place on
;; the store's memory, with the metric partial sums in the same pass.
;;
;; Built by `deno task build:wasm` (src/kernels/wasm/build_wasm.ts, wabt) into
;; src/kernels/wasm/lion_wasm.ts. One source gives four binaries: a shared or a plain
;; memory import (the line marked MEMORY), each with relaxed SIMD or
;; without it (the "strict" build drops the sections marked @relaxed, for
;; runtimes where a relaxed opcode does not validate: Node 20, older
;; browsers). Each function marked @moment is written out twice: once with
;; exp_avg in float32, once in bfloat16 (names end in _bf16; LOAD_M widens
;; four bfloat16 values to float32, STORE_M rounds them back to nearest even,
;; M_BYTES is the bytes of four moments). Bit-exact with the scalar `js`
;; kernel and so with PyTorch:
;;
;;   g = g * gs                 (the step's gradient scale: clipping, maximize)
;;   p = p * decay
;;   p = p - lr * sign(lerp(m, g, 1 - beta1))
;;   m = lerp(m, g, 1 - beta2)
;;   lerp(m, g, w) = w < 0.5 ? fma(w, g - m, m) : fma(w - 1, g - m, g)
;;
;; The caller resolves lerp's branch once per block: it passes the
;; coefficient `c` (w or w - 1) and whether the base is g (1) or m (0).
;;
;; Two ways to the fused multiply-add, both bit-exact:
;; - `update`, `update_metrics` (@relaxed): `f32x4.relaxed_madd`, where
;;   `relaxed_madd_is_fused()` says it rounds once (x86 with FMA, ARM64).
;;   Their loops are written out with no calls: V8 does not inline calls,
;;   and they would cost a third of the speed.
;; - `update_exact`, `update_metrics_exact`: the product and sum in float64
;;   lanes (the product is exact), then rounded to float32: correct unless
;;   the float64 sum is exactly a float32 midpoint (or float32-subnormal),
;;   where that vector is redone rounding to odd ($fma_exact). The only path
;;   of the strict build.
;;
;; Memory: a segment of n elements is processed as whole 64-byte lines. The
;; store's slots are 64-byte aligned and their padding is zero and written
;; by nobody else; zero padding stays zero under the update (g = m = p = 0
;; gives 0) and adds 0 to every sum.
;;
;; The metrics' six sums take float32 products (fused with the add on the
;; relaxed path, rounded apart on the exact one), summed in float32 over runs
;; of RUN_BYTES of parameters (16 vectors: each lane adds 16 products, a
;; relative error under 1e-6), and the runs in float64. That is most of the
;; speed of float32 sums, and the sums stay the same for any worker count
;; (a block is one segment, its runs start at the segment). Where float32
;; overflows (|x| > 1.8e19) or loses digits (sums under 2^-60), the caller
;; recomputes the segment's sums exactly in float64 with `metric_sums`.
;;
;; The scan: `find_non_finite` is the non-finite verdict alone (x - x is 0
;; for every finite x, NaN otherwise); `sum_squares` adds exact float64
;; squares when a gate (clipping) needs the norm.

(module
  (import "env" "memory" (memory 0 65536 shared)) ;; MEMORY

  ;; @relaxed {
  ;; (1 + 2^-23)^2 - (1 + 2^-22) is 2^-46 when fused and 0 when rounded twice.
  (func (export "relaxed_madd_is_fused") (result i32)
    (f32.ne
      (f32x4.extract_lane 0
        (f32x4.relaxed_madd
          (f32x4.splat (f32.const 0x1.000002p+0))
          (f32x4.splat (f32.const 0x1.000002p+0))
          (f32x4.splat (f32.const -0x1.000004p+0))))
      (f32.const 0)))
  ;; @relaxed }

  ;; ---- helpers --------------------------------------------------------

  ;; A splat mask: all ones when $on, else zeros (selects g over m as lerp's base).
  (func $mask (param $on i32) (result v128)
    (i32x4.splat (i32.sub (i32.const 0) (local.get $on))))

  ;; Byte length of n elements rounded up to whole 64-byte lines.
  (func $line_bytes (param $n i32) (result i32)
    (i32.and (i32.add (i32.shl (local.get $n) (i32.const 2)) (i32.const 63)) (i32.const -64)))

  ;; The end of the run that starts at $p: RUN_BYTES on, or $end.
  (func $run_end (param $p i32) (param $end i32) (result i32)
    (local $next i32)
    (local.set $next (i32.add (local.get $p) (i32.const 256))) ;; RUN_BYTES
    (select (local.get $next) (local.get $end) (i32.lt_u (local.get $next) (local.get $end))))

  ;; lr * sign(x), exactly: lr, -lr or +0 (+0 for NaN, as torch 1.13's sign).
  ;; -lr by its sign bit, not by a subtraction: at lr = 0, torch's
  ;; (-0) * -1 is +0 and (0) * -1 is -0, and p - (-0) differs from p - 0
  ;; where p is -0.
  (func $lr_sign (param $x v128) (param $lr v128) (result v128)
    (v128.or
      (v128.and (f32x4.gt (local.get $x) (f32x4.splat (f32.const 0))) (local.get $lr))
      (v128.and (f32x4.lt (local.get $x) (f32x4.splat (f32.const 0))) (f32x4.neg (local.get $lr)))))

  ;; Lanes 2 and 3 moved to 0 and 1.
  (func $high (param $v v128) (result v128)
    (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $v) (local.get $v)))

  (func $lanes (param $v v128) (result f64)
    (f64.add (f64x2.extract_lane 0 (local.get $v)) (f64x2.extract_lane 1 (local.get $v))))

  ;; $acc plus the four float32 lanes of $v, in float64.
  (func $widen_add (param $acc v128) (param $v v128) (result v128)
    (f64x2.add (local.get $acc)
      (f64x2.add
        (f64x2.promote_low_f32x4 (local.get $v))
        (f64x2.promote_low_f32x4 (call $high (local.get $v))))))

  ;; $acc + x * y over both halves, in float64: exact products (float32
  ;; values), so a multiply and an add give what a fused one would.
  (func $dot (param $acc v128) (param $x v128) (param $y v128) (result v128)
    (f64x2.add
      (f64x2.add (local.get $acc)
        (f64x2.mul (f64x2.promote_low_f32x4 (local.get $x)) (f64x2.promote_low_f32x4 (local.get $y))))
      (f64x2.mul
        (f64x2.promote_low_f32x4 (call $high (local.get $x)))
        (f64x2.promote_low_f32x4 (call $high (local.get $y))))))

  ;; c * d + b for two f64 lanes, rounded to odd: the float64 sum and its
  ;; exact error (TwoSum); an inexact finite sum with an even last bit moves
  ;; one ulp towards the error. Rounding that to float32 is correct.
  (func $fma_odd (param $c v128) (param $d v128) (param $b v128) (result v128)
    (local $prod v128) (local $sum v128) (local $bb v128) (local $err v128) (local $move v128)
    (local.set $prod (f64x2.mul (local.get $c) (local.get $d)))
    (local.set $sum (f64x2.add (local.get $prod) (local.get $b)))
    (local.set $bb (f64x2.sub (local.get $sum) (local.get $prod)))
    (local.set $err
      (f64x2.add
        (f64x2.sub (local.get $prod) (f64x2.sub (local.get $sum) (local.get $bb)))
        (f64x2.sub (local.get $b) (local.get $bb))))
    ;; lanes to move: inexact, finite, even
    (local.set $move
      (v128.and
        (v128.and
          (f64x2.ne (local.get $err) (f64x2.splat (f64.const 0)))
          (f64x2.lt (f64x2.abs (local.get $sum)) (f64x2.splat (f64.const inf))))
        (i64x2.eq
          (v128.and (local.get $sum) (i64x2.splat (i64.const 1)))
          (i64x2.splat (i64.const 0)))))
    ;; +1 in the bits moves away from zero: right when the error has the sum's sign
    (i64x2.add
      (local.get $sum)
      (v128.and
        (local.get $move)
        (v128.bitselect
          (i64x2.splat (i64.const 1))
          (i64x2.splat (i64.const -1))
          (i64x2.ge_s (v128.xor (local.get $err) (local.get $sum)) (i64x2.splat (i64.const 0)))))))

  ;; float32 c * d + b rounded once, without a hardware fma ($c64: c as f64x2).
  (func $fma_exact (param $c64 v128) (param $d v128) (param $b v128) (result v128)
    (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
      (f32x4.demote_f64x2_zero
        (call $fma_odd
          (local.get $c64)
          (f64x2.promote_low_f32x4 (local.get $d))
          (f64x2.promote_low_f32x4 (local.get $b))))
      (f32x4.demote_f64x2_zero
        (call $fma_odd
          (local.get $c64)
          (f64x2.promote_low_f32x4 (call $high (local.get $d)))
          (f64x2.promote_low_f32x4 (call $high (local.get $b)))))))

  ;; ---- the gradient scan ---------------------------------------------

  ;; 1 when any of n gradients at byte offset $g is NaN or infinite, else 0.
  ;; A whole 64-byte line per iteration; OR keeps no dependency chain.
  (func (export "find_non_finite") (param $g i32) (param $n i32) (result i32)
    (local $end i32) (local $acc v128) (local $v0 v128) (local $v1 v128) (local $v2 v128) (local $v3 v128)
    (local.set $end (i32.add (local.get $g) (call $line_bytes (local.get $n))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $g) (local.get $end)))
        (local.set $v0 (v128.load offset=0 (local.get $g)))
        (local.set $v1 (v128.load offset=16 (local.get $g)))
        (local.set $v2 (v128.load offset=32 (local.get $g)))
        (local.set $v3 (v128.load offset=48 (local.get $g)))
        (local.set $acc
          (v128.or (local.get $acc)
            (v128.or
              (v128.or (f32x4.sub (local.get $v0) (local.get $v0)) (f32x4.sub (local.get $v1) (local.get $v1)))
              (v128.or (f32x4.sub (local.get $v2) (local.get $v2)) (f32x4.sub (local.get $v3) (local.get $v3))))))
        (local.set $g (i32.add (local.get $g) (i32.const 64)))
        (br $next)))
    (v128.any_true (local.get $acc)))

  ;; Σg² of n elements at byte offset $g, in float64 (non-finite when any g is):
  ;; products of float32 values are exact in float64, so this is the exact
  ;; sum in its order. A whole 64-byte line per iteration, into four
  ;; independent accumulators (one would make every vector wait for the
  ;; previous one's add latency); written out, as calls are not inlined.
  (func (export "sum_squares") (param $g i32) (param $n i32) (result f64)
    (local $end i32) (local $lo v128) (local $hi v128)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local.set $end (i32.add (local.get $g) (call $line_bytes (local.get $n))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $g) (local.get $end)))
        (local.set $lo (f64x2.promote_low_f32x4 (v128.load offset=0 (local.get $g))))
        (local.set $hi (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15
          (v128.load offset=0 (local.get $g)) (v128.load offset=0 (local.get $g)))))
        (local.set $a0 (f64x2.add (f64x2.add (local.get $a0) (f64x2.mul (local.get $lo) (local.get $lo)))
          (f64x2.mul (local.get $hi) (local.get $hi))))
        (local.set $lo (f64x2.promote_low_f32x4 (v128.load offset=16 (local.get $g))))
        (local.set $hi (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15
          (v128.load offset=16 (local.get $g)) (v128.load offset=16 (local.get $g)))))
        (local.set $a1 (f64x2.add (f64x2.add (local.get $a1) (f64x2.mul (local.get $lo) (local.get $lo)))
          (f64x2.mul (local.get $hi) (local.get $hi))))
        (local.set $lo (f64x2.promote_low_f32x4 (v128.load offset=32 (local.get $g))))
        (local.set $hi (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15
          (v128.load offset=32 (local.get $g)) (v128.load offset=32 (local.get $g)))))
        (local.set $a2 (f64x2.add (f64x2.add (local.get $a2) (f64x2.mul (local.get $lo) (local.get $lo)))
          (f64x2.mul (local.get $hi) (local.get $hi))))
        (local.set $lo (f64x2.promote_low_f32x4 (v128.load offset=48 (local.get $g))))
        (local.set $hi (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15
          (v128.load offset=48 (local.get $g)) (v128.load offset=48 (local.get $g)))))
        (local.set $a3 (f64x2.add (f64x2.add (local.get $a3) (f64x2.mul (local.get $lo) (local.get $lo)))
          (f64x2.mul (local.get $hi) (local.get $hi))))
        (local.set $g (i32.add (local.get $g) (i32.const 64)))
        (br $next)))
    (call $lanes
      (f64x2.add
        (f64x2.add (local.get $a0) (local.get $a1))
        (f64x2.add (local.get $a2) (local.get $a3)))))

  ;; ---- the data-parallel average --------------------------------------

  ;; g = g * $s for n gradients at byte offset $g, rounded to float32: the
  ;; average where the world size is a power of two (times its reciprocal,
  ;; exactly the quotient, at a fraction of a division's cost).
  (func (export "scale") (param $g i32) (param $n i32) (param $s f32)
    (local $end i32) (local $sv v128)
    (local.set $end (i32.add (local.get $g) (call $line_bytes (local.get $n))))
    (local.set $sv (f32x4.splat (local.get $s)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $g) (local.get $end)))
        (v128.store offset=0 (local.get $g) (f32x4.mul (v128.load offset=0 (local.get $g)) (local.get $sv)))
        (v128.store offset=16 (local.get $g) (f32x4.mul (v128.load offset=16 (local.get $g)) (local.get $sv)))
        (v128.store offset=32 (local.get $g) (f32x4.mul (v128.load offset=32 (local.get $g)) (local.get $sv)))
        (v128.store offset=48 (local.get $g) (f32x4.mul (v128.load offset=48 (local.get $g)) (local.get $sv)))
        (local.set $g (i32.add (local.get $g) (i32.const 64)))
        (br $next))))

  ;; g = g / $d for n gradients at byte offset $g, the float32 quotient (as
  ;; JavaScript's float64 quotient rounded to float32: double rounding
  ;; cannot change a quotient of float32 values).
  (func (export "divide") (param $g i32) (param $n i32) (param $d f32)
    (local $end i32) (local $dv v128)
    (local.set $end (i32.add (local.get $g) (call $line_bytes (local.get $n))))
    (local.set $dv (f32x4.splat (local.get $d)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $g) (local.get $end)))
        (v128.store offset=0 (local.get $g) (f32x4.div (v128.load offset=0 (local.get $g)) (local.get $dv)))
        (v128.store offset=16 (local.get $g) (f32x4.div (v128.load offset=16 (local.get $g)) (local.get $dv)))
        (v128.store offset=32 (local.get $g) (f32x4.div (v128.load offset=32 (local.get $g)) (local.get $dv)))
        (v128.store offset=48 (local.get $g) (f32x4.div (v128.load offset=48 (local.get $g)) (local.get $dv)))
        (local.set $g (i32.add (local.get $g) (i32.const 64)))
        (br $next))))

  ;; ---- the sign-vote exchange ---------------------------------------
  ;;
  ;; Three passes, 32 elements a pair of words (signs, votes): `vote_signs`
  ;; (a @kernel, below the update) moves this rank's momentum and packs its
  ;; update's signs into pairs at the start of the gradient's slot;
  ;; `vote_tally` counts the ranks' gathered bits into pairs of masks (run
  ;; on a memory of the exchange's own, where the all-gather lands);
  ;; `vote_apply` applies the masks, copied into the gradient's slot, to
  ;; the parameters.

  ;; The vote of $vectors groups of four words: rank r's sign bits at
  ;; $signs + r * $stride (bytes), its voting bits likewise from $voting
  ;; (every element votes where $all_vote). The ranks' votes for and against
  ;; each element are counted bit-sliced, in planes of a ripple of half
  ;; adders at $scratch (32 bytes a plane, up to 31 planes), then compared
  ;; from the top plane. Writes a pair per word from $out: up (bit set where
  ;; more ranks vote +1) and down (where more vote -1); a tie is in neither.
  (func (export "vote_tally") (param $signs i32) (param $voting i32) (param $all_vote i32)
    (param $stride i32) (param $world i32) (param $vectors i32) (param $out i32) (param $scratch i32)
    (local $planes i32) (local $r i32) (local $j i32) (local $at i32) (local $plane i32)
    (local $s v128) (local $v v128) (local $up v128) (local $down v128) (local $carry v128)
    (local $plus v128) (local $minus v128) (local $greater v128) (local $less v128) (local $equal v128)
    ;; enough planes to count every rank; each vote ripples through all of them (no branch on the data)
    (local.set $planes (i32.sub (i32.const 32) (i32.clz (local.get $world))))
    (block $done
      (loop $vector
        (br_if $done (i32.ge_u (local.get $j) (local.get $vectors)))
        (local.set $plane (i32.const 0))
        (block $zeroed
          (loop $zero
            (br_if $zeroed (i32.ge_u (local.get $plane) (local.get $planes)))
            (local.set $at (i32.add (local.get $scratch) (i32.shl (local.get $plane) (i32.const 5))))
            (v128.store offset=0 (local.get $at) (v128.const i64x2 0 0))
            (v128.store offset=16 (local.get $at) (v128.const i64x2 0 0))
            (local.set $plane (i32.add (local.get $plane) (i32.const 1)))
            (br $zero)))
        (local.set $r (i32.const 0))
        (local.set $at (i32.shl (local.get $j) (i32.const 4)))
        (block $counted
          (loop $rank
            (br_if $counted (i32.ge_u (local.get $r) (local.get $world)))
            (local.set $s (v128.load (i32.add (local.get $signs) (local.get $at))))
            (local.set $v
              (if (result v128) (local.get $all_vote)
                (then (v128.const i64x2 -1 -1))
                (else (v128.load (i32.add (local.get $voting) (local.get $at))))))
            (local.set $up (v128.and (local.get $s) (local.get $v)))
            (local.set $down (v128.andnot (local.get $v) (local.get $s)))
            (local.set $plane (local.get $scratch))
            (block $rippled
              (loop $ripple
                (br_if $rippled (i32.ge_u (local.get $plane)
                  (i32.add (local.get $scratch) (i32.shl (local.get $planes) (i32.const 5)))))
                (local.set $plus (v128.load offset=0 (local.get $plane)))
                (local.set $carry (v128.and (local.get $plus) (local.get $up)))
                (v128.store offset=0 (local.get $plane) (v128.xor (local.get $plus) (local.get $up)))
                (local.set $up (local.get $carry))
                (local.set $minus (v128.load offset=16 (local.get $plane)))
                (local.set $carry (v128.and (local.get $minus) (local.get $down)))
                (v128.store offset=16 (local.get $plane) (v128.xor (local.get $minus) (local.get $down)))
                (local.set $down (local.get $carry))
                (local.set $plane (i32.add (local.get $plane) (i32.const 32)))
                (br $ripple)))
            (local.set $at (i32.add (local.get $at) (local.get $stride)))
            (local.set $r (i32.add (local.get $r) (i32.const 1)))
            (br $rank)))
        ;; the two counts compared from the top plane down
        (local.set $greater (v128.const i64x2 0 0))
        (local.set $less (v128.const i64x2 0 0))
        (local.set $equal (v128.const i64x2 -1 -1))
        (local.set $plane (local.get $planes))
        (block $compared
          (loop $compare
            (br_if $compared (i32.eqz (local.get $plane)))
            (local.set $plane (i32.sub (local.get $plane) (i32.const 1)))
            (local.set $at (i32.add (local.get $scratch) (i32.shl (local.get $plane) (i32.const 5))))
            (local.set $plus (v128.load offset=0 (local.get $at)))
            (local.set $minus (v128.load offset=16 (local.get $at)))
            (local.set $greater (v128.or (local.get $greater)
              (v128.and (local.get $equal) (v128.andnot (local.get $plus) (local.get $minus)))))
            (local.set $less (v128.or (local.get $less)
              (v128.and (local.get $equal) (v128.andnot (local.get $minus) (local.get $plus)))))
            (local.set $equal (v128.andnot (local.get $equal) (v128.xor (local.get $plus) (local.get $minus))))
            (br $compare)))
        ;; four words' masks as four pairs
        (local.set $at (i32.add (local.get $out) (i32.shl (local.get $j) (i32.const 5))))
        (v128.store offset=0 (local.get $at)
          (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $greater) (local.get $less)))
        (v128.store offset=16 (local.get $at)
          (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $greater) (local.get $less)))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $vector))))

  ;; The vote applied to n parameters at byte offset $p, from the pairs at
  ;; $masks (up: bit set where the vote is +1; down: where it is -1; a tie
  ;; in neither): p = p * decay - lr * v, rounded as the update rounds it
  ;; (v = 0 subtracts +0). Bits past n must be 0 (the slot's padding stays 0).
  (func (export "vote_apply") (param $p i32) (param $masks i32) (param $n i32)
    (param $lr f32) (param $decay f32)
    (local $end i32) (local $k i32) (local $at i32) (local $up v128) (local $down v128)
    (local $lanes v128) (local $lrv v128) (local $neglrv v128) (local $decayv v128) (local $zero v128)
    (local $lanes0 v128) (local $lanes1 v128) (local $lanes2 v128) (local $lanes3 v128) (local $lanes4 v128) (local $lanes5 v128) (local $lanes6 v128) (local $lanes7 v128)
    (local.set $end (i32.add (local.get $p) (call $line_bytes (local.get $n))))
    (local.set $lrv (f32x4.splat (local.get $lr)))
    (local.set $neglrv (f32x4.neg (local.get $lrv)))
    (local.set $decayv (f32x4.splat (local.get $decay)))
    (local.set $lanes (v128.const i32x4 1 2 4 8))
    (local.set $lanes0 (v128.const i32x4 1 2 4 8))
    (local.set $lanes1 (v128.const i32x4 16 32 64 128))
    (local.set $lanes2 (v128.const i32x4 256 512 1024 2048))
    (local.set $lanes3 (v128.const i32x4 4096 8192 16384 32768))
    (local.set $lanes4 (v128.const i32x4 65536 131072 262144 524288))
    (local.set $lanes5 (v128.const i32x4 1048576 2097152 4194304 8388608))
    (local.set $lanes6 (v128.const i32x4 16777216 33554432 67108864 134217728))
    (local.set $lanes7 (v128.const i32x4 268435456 536870912 1073741824 2147483648))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $up (i32x4.splat (i32.load offset=0 (local.get $masks))))
        (local.set $down (i32x4.splat (i32.load offset=4 (local.get $masks))))
        (local.set $k (i32.const 0))
        ;; a whole group of 32 written out, the last one vector by vector
        (if (i32.le_u (i32.add (local.get $p) (i32.const 128)) (local.get $end))
          (then
            (v128.store offset=0 (local.get $p)
              (f32x4.sub
                (f32x4.mul (v128.load offset=0 (local.get $p)) (local.get $decayv))
                (v128.or
                  (v128.and (i32x4.ne (v128.and (local.get $up) (local.get $lanes0)) (local.get $zero)) (local.get $lrv))
                  (v128.and (i32x4.ne (v128.and (local.get $down) (local.get $lanes0)) (local.get $zero)) (local.get $neglrv)))))
            (v128.store offset=16 (local.get $p)
              (f32x4.sub
                (f32x4.mul (v128.load offset=16 (local.get $p)) (local.get $decayv))
                (v128.or
                  (v128.and (i32x4.ne (v128.and (local.get $up) (local.get $lanes1)) (local.get $zero)) (local.get $lrv))
                  (v128.and (i32x4.ne (v128.and (local.get $down) (local.get $lanes1)) (local.get $zero)) (local.get $neglrv)))))
            (v128.store offset=32 (local.get $p)
              (f32x4.sub
                (f32x4.mul (v128.load offset=32 (local.get $p)) (local.get $decayv))
                (v128.or
                  (v128.and (i32x4.ne (v128.and (local.get $up) (local.get $lanes2)) (local.get $zero)) (local.get $lrv))
                  (v128.and (i32x4.ne (v128.and (local.get $down) (local.get $lanes2)) (local.get $zero)) (local.get $neglrv)))))
            (v128.store offset=48 (local.get $p)
              (f32x4.sub
                (f32x4.mul (v128.load offset=48 (local.get $p)) (local.get $decayv))
                (v128.or
                  (v128.and (i32x4.ne (v128.and (local.get $up) (local.get $lanes3)) (local.get $zero)) (local.get $lrv))
                  (v128.and (i32x4.ne (v128.and (local.get $down) (local.get $lanes3)) (local.get $zero)) (local.get $neglrv)))))
            (v128.store offset=64 (local.get $p)
              (f32x4.sub
                (f32x4.mul (v128.load offset=64 (local.get $p)) (local.get $decayv))
                (v128.or
                  (v128.and (i32x4.ne (v128.and (local.get $up) (local.get $lanes4)) (local.get $zero)) (local.get $lrv))
                  (v128.and (i32x4.ne (v128.and (local.get $down) (local.get $lanes4)) (local.get $zero)) (local.get $neglrv)))))
            (v128.store offset=80 (local.get $p)
              (f32x4.sub
                (f32x4.mul (v128.load offset=80 (local.get $p)) (local.get $decayv))
                (v128.or
                  (v128.and (i32x4.ne (v128.and (local.get $up) (local.get $lanes5)) (local.get $zero)) (local.get $lrv))
                  (v128.and (i32x4.ne (v128.and (local.get $down) (local.get $lanes5)) (local.get $zero)) (local.get $neglrv)))))
            (v128.store offset=96 (local.get $p)
              (f32x4.sub
                (f32x4.mul (v128.load offset=96 (local.get $p)) (local.get $decayv))
                (v128.or
                  (v128.and (i32x4.ne (v128.and (local.get $up) (local.get $lanes6)) (local.get $zero)) (local.get $lrv))
                  (v128.and (i32x4.ne (v128.and (local.get $down) (local.get $lanes6)) (local.get $zero)) (local.get $neglrv)))))
            (v128.store offset=112 (local.get $p)
              (f32x4.sub
                (f32x4.mul (v128.load offset=112 (local.get $p)) (local.get $decayv))
                (v128.or
                  (v128.and (i32x4.ne (v128.and (local.get $up) (local.get $lanes7)) (local.get $zero)) (local.get $lrv))
                  (v128.and (i32x4.ne (v128.and (local.get $down) (local.get $lanes7)) (local.get $zero)) (local.get $neglrv)))))
            (local.set $k (i32.const 8))))
        (block $words
          (loop $word
            (local.set $at (i32.add (local.get $p) (i32.shl (local.get $k) (i32.const 4))))
            (br_if $words (i32.or (i32.ge_u (local.get $k) (i32.const 8))
              (i32.ge_u (local.get $at) (local.get $end))))
            (v128.store (local.get $at)
              (f32x4.sub
                (f32x4.mul (v128.load (local.get $at)) (local.get $decayv))
                (v128.or
                  (v128.and
                    (i32x4.ne (v128.and (local.get $up) (local.get $lanes)) (v128.const i64x2 0 0))
                    (local.get $lrv))
                  (v128.and
                    (i32x4.ne (v128.and (local.get $down) (local.get $lanes)) (v128.const i64x2 0 0))
                    (local.get $neglrv)))))
            (local.set $up (i32x4.shr_u (local.get $up) (i32.const 4)))
            (local.set $down (i32x4.shr_u (local.get $down) (i32.const 4)))
            (local.set $k (i32.add (local.get $k) (i32.const 1)))
            (br $word)))
        (local.set $masks (i32.add (local.get $masks) (i32.const 8)))
        (local.set $p (i32.add (local.get $p) (i32.const 128)))
        (br $next))))

  ;; ---- the update ----------------------------------------------------
  ;;
  ;; A whole 64-byte line of parameters per iteration: the @unroll body
  ;; four times (OFFSET_V: the vector's byte offset in the line, OFFSET_M:
  ;; its moments'), which keeps the loop's own work off three vectors in four.
  ;;
  ;; @kernel sections are written out for each fma path and moment type:
  ;; update{F}{M}, with {F} "" (FMA: f32x4.relaxed_madd; relaxed build
  ;; only) or "_exact" (FMA: float64 lanes, see fmaExact in build_wasm.ts:
  ;; a multiply and an add in float64, correctly rounded to float32 unless
  ;; the sum lands exactly on a float32 midpoint, which sends that vector
  ;; through $fma_exact's round-to-odd), {B} "" (each lerp's base, g or m,
  ;; chosen by a mask: BASE) or "_mm" (both bases m, as for betas above 0.5,
  ;; the usual ones: no masks, two registers and three selects
  ;; fewer), and {M} "" or "_bf16".

  ;; @kernel {
  ;; The update of n elements at byte offsets $p, $g, $m.
  ;; $c1/$g1: coefficient and base of the direction's lerp (1 - beta1);
  ;; $c2/$g2: of the moment's lerp (1 - beta2); $decay: 1 - decay * wd;
  ;; $gs: the gradient scale (1 leaves g exactly as it is).
  (func (export "update{F}{B}{M}")
    (param $p i32) (param $g i32) (param $m i32) (param $n i32)
    (param $lr f32) (param $c1 f32) (param $g1 i32) (param $c2 f32) (param $g2 i32) (param $decay f32)
    (param $gs f32)
    (local $end i32) (local $lrv v128) (local $neglrv v128) (local $c1v v128) (local $sel1 v128)
    (local $c2v v128) (local $sel2 v128) (local $c1w v128) (local $c2w v128) (local $decayv v128)
    (local $gsv v128) (local $zero v128) (local $gv v128) (local $mv v128) (local $pv v128) (local $d v128)
    (local $dir v128) (local $fx_d v128) (local $fx_b v128) (local $fx_lo v128) (local $fx_hi v128)
    (local.set $end (i32.add (local.get $p) (call $line_bytes (local.get $n))))
    (local.set $lrv (f32x4.splat (local.get $lr)))
    (local.set $neglrv (f32x4.neg (local.get $lrv)))
    (local.set $c1v (f32x4.splat (local.get $c1)))
    (local.set $c2v (f32x4.splat (local.get $c2)))
    (local.set $c1w (f64x2.splat (f64.promote_f32 (local.get $c1))))
    (local.set $c2w (f64x2.splat (f64.promote_f32 (local.get $c2))))
    (local.set $sel1 (call $mask (local.get $g1)))
    (local.set $sel2 (call $mask (local.get $g2)))
    (local.set $decayv (f32x4.splat (local.get $decay)))
    (local.set $gsv (f32x4.splat (local.get $gs)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        ;; @unroll {
        (local.set $gv (f32x4.mul (v128.load offset=OFFSET_V (local.get $g)) (local.get $gsv)))
        (local.set $mv (LOAD_M offset=OFFSET_M (local.get $m)))
        (local.set $d (f32x4.sub (local.get $gv) (local.get $mv)))
        (FMA_SIGN $dir $c1v $c1w (local.get $d) (BASE $sel1))
        ;; p * decay - lr * sign(dir)
        (v128.store offset=OFFSET_V (local.get $p)
          (f32x4.sub
            (f32x4.mul (v128.load offset=OFFSET_V (local.get $p)) (local.get $decayv))
            (v128.or
              (v128.and (f32x4.gt (local.get $dir) (local.get $zero)) (local.get $lrv))
              (v128.and (f32x4.lt (local.get $dir) (local.get $zero)) (local.get $neglrv)))))
        (FMA $mv $c2v $c2w (local.get $d) (BASE $sel2))
        (STORE_M $mv offset=OFFSET_M (local.get $m))
        ;; @unroll }
        (local.set $p (i32.add (local.get $p) (i32.const 64)))
        (local.set $g (i32.add (local.get $g) (i32.const 64)))
        (local.set $m (i32.add (local.get $m) (i32.const LINE_MOMENT_BYTES)))
        (br $next))))

  ;; The update, plus the partial sums of the metrics over the post-step m
  ;; and p, the step's g and the reference's step tensor
  ;; u = lr * sign(lerp(m, g, 1 - beta1)) + $sd * p, with $sd = -wd * decay:
  ;; returns Σm², Σp², Σu², Σg², Σu·g, Σm·g (float32 runs, see the top).
  (func (export "update_metrics{F}{B}{M}")
    (param $p i32) (param $g i32) (param $m i32) (param $n i32)
    (param $lr f32) (param $c1 f32) (param $g1 i32) (param $c2 f32) (param $g2 i32) (param $decay f32)
    (param $gs f32)
    (param $sd f32)
    (result f64 f64 f64 f64 f64 f64)
    (local $end i32) (local $lrv v128) (local $neglrv v128) (local $c1v v128) (local $sel1 v128)
    (local $c2v v128) (local $sel2 v128) (local $c1w v128) (local $c2w v128) (local $decayv v128)
    (local $gsv v128) (local $zero v128) (local $gv v128) (local $mv v128) (local $pv v128) (local $d v128)
    (local $dir v128) (local $fx_d v128) (local $fx_b v128) (local $fx_lo v128) (local $fx_hi v128)
    (local $run_end i32) (local $sdv v128) (local $sdw v128) (local $uv v128)
    (local $mm v128) (local $smm v128) (local $pp v128) (local $spp v128) (local $uu v128) (local $suu v128) (local $gg v128) (local $sgg v128) (local $ug v128) (local $sug v128) (local $mg v128) (local $smg v128)
    (local.set $end (i32.add (local.get $p) (call $line_bytes (local.get $n))))
    (local.set $lrv (f32x4.splat (local.get $lr)))
    (local.set $neglrv (f32x4.neg (local.get $lrv)))
    (local.set $c1v (f32x4.splat (local.get $c1)))
    (local.set $c2v (f32x4.splat (local.get $c2)))
    (local.set $c1w (f64x2.splat (f64.promote_f32 (local.get $c1))))
    (local.set $c2w (f64x2.splat (f64.promote_f32 (local.get $c2))))
    (local.set $sel1 (call $mask (local.get $g1)))
    (local.set $sel2 (call $mask (local.get $g2)))
    (local.set $decayv (f32x4.splat (local.get $decay)))
    (local.set $gsv (f32x4.splat (local.get $gs)))
    (local.set $sdv (f32x4.splat (local.get $sd)))
    (local.set $sdw (f64x2.splat (f64.promote_f32 (local.get $sd))))
    (block $done
      (loop $run
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $run_end (call $run_end (local.get $p) (local.get $end)))
        (local.set $smm (v128.const i64x2 0 0))
        (local.set $spp (v128.const i64x2 0 0))
        (local.set $suu (v128.const i64x2 0 0))
        (local.set $sgg (v128.const i64x2 0 0))
        (local.set $sug (v128.const i64x2 0 0))
        (local.set $smg (v128.const i64x2 0 0))
        (loop $next
        ;; @unroll {
        (local.set $gv (f32x4.mul (v128.load offset=OFFSET_V (local.get $g)) (local.get $gsv)))
        (local.set $mv (LOAD_M offset=OFFSET_M (local.get $m)))
        (local.set $d (f32x4.sub (local.get $gv) (local.get $mv)))
        (FMA_SIGN $dir $c1v $c1w (local.get $d) (BASE $sel1))
        (local.set $pv
          (f32x4.sub
            (f32x4.mul (v128.load offset=OFFSET_V (local.get $p)) (local.get $decayv))
            (v128.or
              (v128.and (f32x4.gt (local.get $dir) (local.get $zero)) (local.get $lrv))
              (v128.and (f32x4.lt (local.get $dir) (local.get $zero)) (local.get $neglrv)))))
        (v128.store offset=OFFSET_V (local.get $p) (local.get $pv))
        (FMA $mv $c2v $c2w (local.get $d) (BASE $sel2))
        (STORE_M $mv offset=OFFSET_M (local.get $m))
        ;; the reference's step tensor, from the post-step moment
        (FMA_SIGN $dir $c1v $c1w (f32x4.sub (local.get $gv) (local.get $mv))
          (BASE $sel1))
        (FMA $uv $sdv $sdw (local.get $pv) (v128.or
              (v128.and (f32x4.gt (local.get $dir) (local.get $zero)) (local.get $lrv))
              (v128.and (f32x4.lt (local.get $dir) (local.get $zero)) (local.get $neglrv))))
        (SUM $smm (local.get $mv) (local.get $mv))
        (SUM $spp (local.get $pv) (local.get $pv))
        (SUM $suu (local.get $uv) (local.get $uv))
        (SUM $sgg (local.get $gv) (local.get $gv))
        (SUM $sug (local.get $uv) (local.get $gv))
        (SUM $smg (local.get $mv) (local.get $gv))
        ;; @unroll }
        (local.set $p (i32.add (local.get $p) (i32.const 64)))
        (local.set $g (i32.add (local.get $g) (i32.const 64)))
        (local.set $m (i32.add (local.get $m) (i32.const LINE_MOMENT_BYTES)))
          (br_if $next (i32.lt_u (local.get $p) (local.get $run_end))))
        (local.set $mm (call $widen_add (local.get $mm) (local.get $smm)))
        (local.set $pp (call $widen_add (local.get $pp) (local.get $spp)))
        (local.set $uu (call $widen_add (local.get $uu) (local.get $suu)))
        (local.set $gg (call $widen_add (local.get $gg) (local.get $sgg)))
        (local.set $ug (call $widen_add (local.get $ug) (local.get $sug)))
        (local.set $mg (call $widen_add (local.get $mg) (local.get $smg)))
        (br $run)))
    (call $lanes (local.get $mm))
    (call $lanes (local.get $pp))
    (call $lanes (local.get $uu))
    (call $lanes (local.get $gg))
    (call $lanes (local.get $ug))
    (call $lanes (local.get $mg))
  )
  ;; @kernel }

  ;; @kernel {
  ;; The sign-vote exchange's first pass over n elements at byte offsets $g,
  ;; $m: this rank's momentum moved as the update moves it,
  ;; m = lerp(m, g, 1 - beta2), and for each 32 elements a pair of words
  ;; from $g on: the signs (bit set where c = lerp(m, g, 1 - beta1) > 0) and
  ;; the votes (where c is neither ±0 nor NaN). A line's 16 bits are half a
  ;; word: line k's land at byte 8(k >> 1) + 2(k & 1) (its votes 4 bytes
  ;; on), behind every byte read so far. The padding (g = m = 0) votes
  ;; nowhere, so bits past n are 0. Returns how many of the n abstain.
  (func (export "vote_signs{F}{B}{M}")
    (param $g i32) (param $m i32) (param $n i32)
    (param $c1 f32) (param $g1 i32) (param $c2 f32) (param $g2 i32) (param $gs f32)
    (result i32)
    (local $end i32) (local $pairs i32) (local $line i32) (local $out i32) (local $signs i32)
    (local $votes i32) (local $voters i32) (local $c1v v128) (local $sel1 v128) (local $c2v v128) (local $sel2 v128) (local $c1w v128)
    (local $c2w v128) (local $gsv v128) (local $zero v128) (local $gv v128) (local $mv v128)
    (local $d v128) (local $dir v128) (local $fx_d v128) (local $fx_b v128) (local $fx_lo v128)
    (local $fx_hi v128)
    (local.set $end (i32.add (local.get $g) (call $line_bytes (local.get $n))))
    (local.set $pairs (local.get $g))
    (local.set $c1v (f32x4.splat (local.get $c1)))
    (local.set $c2v (f32x4.splat (local.get $c2)))
    (local.set $c1w (f64x2.splat (f64.promote_f32 (local.get $c1))))
    (local.set $c2w (f64x2.splat (f64.promote_f32 (local.get $c2))))
    (local.set $sel1 (call $mask (local.get $g1)))
    (local.set $sel2 (call $mask (local.get $g2)))
    (local.set $gsv (f32x4.splat (local.get $gs)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $g) (local.get $end)))
        (local.set $signs (i32.const 0))
        (local.set $votes (i32.const 0))
        ;; @unroll {
        (local.set $gv (f32x4.mul (v128.load offset=OFFSET_V (local.get $g)) (local.get $gsv)))
        (local.set $mv (LOAD_M offset=OFFSET_M (local.get $m)))
        (local.set $d (f32x4.sub (local.get $gv) (local.get $mv)))
        (FMA_SIGN $dir $c1v $c1w (local.get $d) (BASE $sel1))
        (local.set $signs (i32.or (local.get $signs) (i32.shl
          (i32x4.bitmask (f32x4.gt (local.get $dir) (local.get $zero))) (i32.const UNROLL_BIT))))
        (local.set $votes (i32.or (local.get $votes) (i32.shl
          (i32x4.bitmask (v128.or (f32x4.gt (local.get $dir) (local.get $zero))
            (f32x4.lt (local.get $dir) (local.get $zero))))
          (i32.const UNROLL_BIT))))
        (FMA $mv $c2v $c2w (local.get $d) (BASE $sel2))
        (STORE_M $mv offset=OFFSET_M (local.get $m))
        ;; @unroll }
        (local.set $out (i32.add (local.get $pairs) (i32.add
          (i32.shl (i32.shr_u (local.get $line) (i32.const 1)) (i32.const 3))
          (i32.shl (i32.and (local.get $line) (i32.const 1)) (i32.const 1)))))
        (i32.store16 offset=0 (local.get $out) (local.get $signs))
        (i32.store16 offset=4 (local.get $out) (local.get $votes))
        (local.set $voters (i32.add (local.get $voters) (i32.popcnt (local.get $votes))))
        (local.set $line (i32.add (local.get $line) (i32.const 1)))
        (local.set $g (i32.add (local.get $g) (i32.const 64)))
        (local.set $m (i32.add (local.get $m) (i32.const LINE_MOMENT_BYTES)))
        (br $next)))
    ;; an odd count of lines leaves the last pair's high halves: no element there
    (if (i32.and (local.get $line) (i32.const 1))
      (then
        (i32.store16 offset=2 (local.get $out) (i32.const 0))
        (i32.store16 offset=6 (local.get $out) (i32.const 0))))
    (i32.sub (local.get $n) (local.get $voters)))
  ;; @kernel }

  ;; ---- the exact sums (the fallback of the float32 runs) ---------------

  ;; The reference's step tensor of one vector: $sd * p + lr * sign(lerp(m, g, 1 - beta1))
  ;; rounded once (as the update paths and the scalar kernel round it).
  (func $step_tensor_exact (param $gv v128) (param $mv v128) (param $pv v128)
    (param $lrv v128) (param $c1w v128) (param $sel1 v128) (param $sdw v128) (result v128)
    (call $fma_exact (local.get $sdw) (local.get $pv)
      (call $lr_sign
        (call $fma_exact (local.get $c1w) (f32x4.sub (local.get $gv) (local.get $mv))
          (v128.bitselect (local.get $gv) (local.get $mv) (local.get $sel1)))
        (local.get $lrv))))

  ;; @moment {
  ;; The six sums of n elements after their update, exactly in float64 (the
  ;; fallback where the float32 runs overflow or lose digits): reads the
  ;; post-step p and m and the step's g, writes nothing.
  (func (export "metric_sums{M}")
    (param $p i32) (param $g i32) (param $m i32) (param $n i32)
    (param $lr f32) (param $c1 f32) (param $g1 i32) (param $gs f32) (param $sd f32)
    (result f64 f64 f64 f64 f64 f64)
    (local $end i32) (local $gsv v128) (local $gv v128) (local $mv v128) (local $pv v128) (local $uv v128)
    (local $lrv v128) (local $c1w v128) (local $sel1 v128) (local $sdw v128)
    (local $mm v128) (local $pp v128) (local $uu v128) (local $gg v128) (local $ug v128) (local $mg v128)
    (local.set $end (i32.add (local.get $p) (call $line_bytes (local.get $n))))
    (local.set $gsv (f32x4.splat (local.get $gs)))
    (local.set $lrv (f32x4.splat (local.get $lr)))
    (local.set $c1w (f64x2.splat (f64.promote_f32 (local.get $c1))))
    (local.set $sel1 (call $mask (local.get $g1)))
    (local.set $sdw (f64x2.splat (f64.promote_f32 (local.get $sd))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $gv (f32x4.mul (v128.load (local.get $g)) (local.get $gsv)))
        (local.set $mv (LOAD_M (local.get $m)))
        (local.set $pv (v128.load (local.get $p)))
        (local.set $uv (call $step_tensor_exact (local.get $gv) (local.get $mv) (local.get $pv)
          (local.get $lrv) (local.get $c1w) (local.get $sel1) (local.get $sdw)))
        (local.set $mm (call $dot (local.get $mm) (local.get $mv) (local.get $mv)))
        (local.set $pp (call $dot (local.get $pp) (local.get $pv) (local.get $pv)))
        (local.set $uu (call $dot (local.get $uu) (local.get $uv) (local.get $uv)))
        (local.set $gg (call $dot (local.get $gg) (local.get $gv) (local.get $gv)))
        (local.set $ug (call $dot (local.get $ug) (local.get $uv) (local.get $gv)))
        (local.set $mg (call $dot (local.get $mg) (local.get $mv) (local.get $gv)))
        (local.set $p (i32.add (local.get $p) (i32.const 16)))
        (local.set $g (i32.add (local.get $g) (i32.const 16)))
        (local.set $m (i32.add (local.get $m) (i32.const M_BYTES)))
        (br $next)))
    (call $lanes (local.get $mm))
    (call $lanes (local.get $pp))
    (call $lanes (local.get $uu))
    (call $lanes (local.get $gg))
    (call $lanes (local.get $ug))
    (call $lanes (local.get $mg))
  )
  ;; @moment }

  ;; ---- 8-bit moments ----------------------------------------------------
  ;;
  ;; bitsandbytes' blockwise 8-bit rule (store/uint8_moments.ts) on whole
  ;; blocks of 256: a block is 256 codes, then its float32 absmax (65
  ;; words). The arena's first bytes hold the tables (KERNEL_TABLES): the
  ;; map's values from $t, the buckets' words (BUCKET_WORDS) from $t + 1024.
  ;; WebAssembly has no gather: each lookup is four scalar loads into a
  ;; vector.
  ;;
  ;; Pass one moves the parameters and finds the block's largest new
  ;; moment; pass two computes the moments again (cheaper than storing
  ;; them: no scratch memory per worker) and writes their codes:
  ;;   s = code[q]·absmax;  p = p·decay − lr·sign(s·β1 + g·(1 − β1))
  ;;   s' = fma(1 − β2, g, s·β2);  absmax' = max|s'|
  ;;   q' = the count of midpoints below clamp(s'·(1 / max(absmax', 1e-38)), −1, 1)
  ;; The count by the map's structure, as the scalar kernels take it: the
  ;; word of |x|'s bucket (its bits >> 17) gives the positive midpoints
  ;; below it and the next one's bits within it, one comparison of bits
  ;; decides, and negative codes mirror positive ones (but for the top
  ;; code, 1). No calls in the loops: V8 does not inline them.

  ;; The largest of four lanes.
  (func $max4 (param $v v128) (result f32)
    (local.set $v (f32x4.max (local.get $v) (call $high (local.get $v))))
    (f32.max (f32x4.extract_lane 0 (local.get $v)) (f32x4.extract_lane 1 (local.get $v))))

  ;; @fma {
  ;; $blocks whole blocks: parameters at $p, gradients at $g, blocks at $m,
  ;; tables at $t. $mw: 1 − β2 as f32, $dw: 1 − β1.
  (func (export "update_u8{F}")
    (param $p i32) (param $g i32) (param $m i32) (param $blocks i32) (param $t i32)
    (param $lr f32) (param $beta1 f32) (param $dw f32) (param $beta2 f32) (param $mw f32)
    (param $decay f32) (param $gs f32)
    (local $i i32) (local $end i32) (local $absv v128) (local $largest v128) (local $invv v128)
    (local $s v128) (local $gv v128) (local $next v128) (local $c v128) (local $absmax f32)
    (local $lrv v128) (local $beta1v v128) (local $dwv v128) (local $beta2v v128) (local $mwv v128)
    (local $mww v128) (local $decayv v128) (local $gsv v128)
    (local $fx_d v128) (local $fx_b v128) (local $fx_lo v128) (local $fx_hi v128)
    (local $q i32) (local $x v128) (local $mag v128) (local $bucket v128) (local $below v128)
    (local $gap v128) (local $at_or_below v128) (local $word v128) (local $within v128) (local $low_mask v128) (local $zero v128) (local $neglrv v128)
    (local $one v128) (local $minus_one v128) (local $abs_mask v128) (local $ones v128) (local $c127 v128)
    (local.set $lrv (f32x4.splat (local.get $lr)))
    (local.set $neglrv (f32x4.neg (local.get $lrv)))
    (local.set $one (f32x4.splat (f32.const 1)))
    (local.set $minus_one (f32x4.splat (f32.const -1)))
    (local.set $abs_mask (i32x4.splat (i32.const 0x7fffffff)))
    (local.set $ones (i32x4.splat (i32.const 1)))
    (local.set $c127 (i32x4.splat (i32.const 127)))
    (local.set $within (i32x4.splat (i32.const 0x1ffff)))
    (local.set $low_mask (i32x4.splat (i32.const 0x3ffff)))
    (local.set $beta1v (f32x4.splat (local.get $beta1)))
    (local.set $dwv (f32x4.splat (local.get $dw)))
    (local.set $beta2v (f32x4.splat (local.get $beta2)))
    (local.set $mwv (f32x4.splat (local.get $mw)))
    (local.set $mww (f64x2.splat (f64.promote_f32 (local.get $mw))))
    (local.set $decayv (f32x4.splat (local.get $decay)))
    (local.set $gsv (f32x4.splat (local.get $gs)))
    (local.set $end (i32.add (local.get $m) (i32.mul (local.get $blocks) (i32.const 260))))
    (block $done
      (loop $block
        (br_if $done (i32.ge_u (local.get $m) (local.get $end)))
        (local.set $absv (v128.load32_splat offset=256 (local.get $m)))
        (local.set $largest (f32x4.splat (f32.const 0)))
        (local.set $i (i32.const 0))
        (loop $one
          ;; the moments of four codes: four loads from the map
          (local.set $q (i32.load (i32.add (local.get $m) (i32.shr_u (local.get $i) (i32.const 2)))))
          (local.set $s (f32x4.mul
            (f32x4.replace_lane 3
              (f32x4.replace_lane 2
                (f32x4.replace_lane 1
                  (f32x4.splat (f32.load (i32.add (local.get $t)
                    (i32.and (i32.shl (local.get $q) (i32.const 2)) (i32.const 1020)))))
                  (f32.load (i32.add (local.get $t)
                    (i32.and (i32.shr_u (local.get $q) (i32.const 6)) (i32.const 1020)))))
                (f32.load (i32.add (local.get $t)
                  (i32.and (i32.shr_u (local.get $q) (i32.const 14)) (i32.const 1020)))))
              (f32.load (i32.add (local.get $t)
                (i32.and (i32.shr_u (local.get $q) (i32.const 22)) (i32.const 1020)))))
            (local.get $absv)))
          (local.set $gv (f32x4.mul (v128.load (i32.add (local.get $g) (local.get $i))) (local.get $gsv)))
          (local.set $c (f32x4.add (f32x4.mul (local.get $s) (local.get $beta1v))
            (f32x4.mul (local.get $gv) (local.get $dwv))))
          (v128.store (i32.add (local.get $p) (local.get $i))
            (f32x4.sub
              (f32x4.mul (v128.load (i32.add (local.get $p) (local.get $i))) (local.get $decayv))
              (v128.or
                (v128.and (f32x4.gt (local.get $c) (local.get $zero)) (local.get $lrv))
                (v128.and (f32x4.lt (local.get $c) (local.get $zero)) (local.get $neglrv)))))
          (FMA $next $mwv $mww (local.get $gv) (f32x4.mul (local.get $s) (local.get $beta2v)))
          (local.set $largest (f32x4.max (local.get $largest) (f32x4.abs (local.get $next))))
          (local.set $i (i32.add (local.get $i) (i32.const 16)))
          (br_if $one (i32.lt_u (local.get $i) (i32.const 1024))))
        (local.set $absmax (call $max4 (local.get $largest)))
        (local.set $invv (f32x4.splat
          (f32.div (f32.const 1) (f32.max (local.get $absmax) (f32.const 0x1.b38fb8p-127)))))
        (local.set $i (i32.const 0))
        (loop $two
          (local.set $q (i32.load (i32.add (local.get $m) (i32.shr_u (local.get $i) (i32.const 2)))))
          (local.set $s (f32x4.mul
            (f32x4.replace_lane 3
              (f32x4.replace_lane 2
                (f32x4.replace_lane 1
                  (f32x4.splat (f32.load (i32.add (local.get $t)
                    (i32.and (i32.shl (local.get $q) (i32.const 2)) (i32.const 1020)))))
                  (f32.load (i32.add (local.get $t)
                    (i32.and (i32.shr_u (local.get $q) (i32.const 6)) (i32.const 1020)))))
                (f32.load (i32.add (local.get $t)
                  (i32.and (i32.shr_u (local.get $q) (i32.const 14)) (i32.const 1020)))))
              (f32.load (i32.add (local.get $t)
                (i32.and (i32.shr_u (local.get $q) (i32.const 22)) (i32.const 1020)))))
            (local.get $absv)))
          (local.set $gv (f32x4.mul (v128.load (i32.add (local.get $g) (local.get $i))) (local.get $gsv)))
          (FMA $next $mwv $mww (local.get $gv) (f32x4.mul (local.get $s) (local.get $beta2v)))
          ;; the codes: the word of |x|'s bucket (its bits >> 17; a word each, from $t + 1024)
          ;; gives the positive midpoints below it and the next one's bits within it
          (local.set $x (f32x4.min (local.get $one)
            (f32x4.max (local.get $minus_one) (f32x4.mul (local.get $next) (local.get $invv)))))
          (local.set $mag (v128.and (local.get $x) (local.get $abs_mask)))
          (local.set $bucket (i32x4.shl (i32x4.shr_u (local.get $mag) (i32.const 17)) (i32.const 2)))
          (local.set $word
            (i32x4.replace_lane 3
              (i32x4.replace_lane 2
                (i32x4.replace_lane 1
                  (i32x4.splat (i32.load offset=1024 (i32.add (local.get $t)
                    (i32x4.extract_lane 0 (local.get $bucket)))))
                  (i32.load offset=1024 (i32.add (local.get $t) (i32x4.extract_lane 1 (local.get $bucket)))))
                (i32.load offset=1024 (i32.add (local.get $t) (i32x4.extract_lane 2 (local.get $bucket)))))
              (i32.load offset=1024 (i32.add (local.get $t) (i32x4.extract_lane 3 (local.get $bucket))))))
          (local.set $below (i32x4.shr_u (local.get $word) (i32.const 18)))
          ;; next < |x|: the sign bit of next − |x| within the bucket (a next above it: 2^17 − |x|'s)
          (local.set $gap (i32x4.sub (v128.and (local.get $word) (local.get $low_mask))
            (v128.and (local.get $mag) (local.get $within))))
          (local.set $at_or_below
            (i32x4.add (local.get $below) (i32x4.shr_u (i32x4.sub (local.get $gap) (local.get $ones)) (i32.const 31))))
          (local.set $next
            (v128.bitselect
              ;; x <= 0 (its sign bit; ±0 gives 127 both ways): 127 − min(127, midpoints <= |x|)
              (i32x4.sub (local.get $c127)
                (i32x4.sub (local.get $at_or_below) (i32x4.shr_s (local.get $at_or_below) (i32.const 7))))
              ;; x > 0: 127 + the midpoints below |x|
              (i32x4.add (i32x4.add (local.get $below) (local.get $c127))
                (i32x4.shr_u (local.get $gap) (i32.const 31)))
              (i32x4.shr_s (local.get $x) (i32.const 31))))
          (v128.store32_lane 0 (i32.add (local.get $m) (i32.shr_u (local.get $i) (i32.const 2)))
            (i8x16.narrow_i16x8_u
              (i16x8.narrow_i32x4_u (local.get $next) (local.get $next))
              (i16x8.narrow_i32x4_u (local.get $next) (local.get $next))))
          (local.set $i (i32.add (local.get $i) (i32.const 16)))
          (br_if $two (i32.lt_u (local.get $i) (i32.const 1024))))
        (f32.store offset=256 (local.get $m) (local.get $absmax))
        (local.set $p (i32.add (local.get $p) (i32.const 1024)))
        (local.set $g (i32.add (local.get $g) (i32.const 1024)))
        (local.set $m (i32.add (local.get $m) (i32.const 260)))
        (br $block))))
  ;; The metrics' six sums over $blocks whole blocks after their update,
  ;; from the stored moments s (dequantized) and bitsandbytes' direction:
  ;; u = lr·sign(s·β1 + g·(1 − β1)) + $sd·p; Σs², Σp², Σu², Σg², Σu·g, Σs·g
  ;; in float32 runs of 16 vectors (as update_metrics), the runs in float64.
  (func (export "sums_u8{F}")
    (param $p i32) (param $g i32) (param $m i32) (param $blocks i32) (param $t i32)
    (param $lr f32) (param $beta1 f32) (param $dw f32) (param $gs f32) (param $sd f32)
    (result f64 f64 f64 f64 f64 f64)
    (local $i i32) (local $end i32) (local $run_end i32) (local $q i32) (local $absv v128)
    (local $s v128) (local $gv v128) (local $pv v128) (local $c v128) (local $uv v128)
    (local $lrv v128) (local $neglrv v128) (local $beta1v v128) (local $dwv v128) (local $gsv v128)
    (local $sdv v128) (local $sdw v128) (local $zero v128)
    (local $fx_d v128) (local $fx_b v128) (local $fx_lo v128) (local $fx_hi v128)
    (local $mm v128) (local $smm v128) (local $pp v128) (local $spp v128) (local $uu v128) (local $suu v128)
    (local $gg v128) (local $sgg v128) (local $ug v128) (local $sug v128) (local $mg v128) (local $smg v128)
    (local.set $lrv (f32x4.splat (local.get $lr)))
    (local.set $neglrv (f32x4.neg (local.get $lrv)))
    (local.set $beta1v (f32x4.splat (local.get $beta1)))
    (local.set $dwv (f32x4.splat (local.get $dw)))
    (local.set $gsv (f32x4.splat (local.get $gs)))
    (local.set $sdv (f32x4.splat (local.get $sd)))
    (local.set $sdw (f64x2.splat (f64.promote_f32 (local.get $sd))))
    (local.set $end (i32.add (local.get $m) (i32.mul (local.get $blocks) (i32.const 260))))
    (block $done
      (loop $block
        (br_if $done (i32.ge_u (local.get $m) (local.get $end)))
        (local.set $absv (v128.load32_splat offset=256 (local.get $m)))
        (local.set $i (i32.const 0))
        (loop $run
          (local.set $run_end (i32.add (local.get $i) (i32.const 256))) ;; RUN_BYTES
          (local.set $smm (v128.const i64x2 0 0))
          (local.set $spp (v128.const i64x2 0 0))
          (local.set $suu (v128.const i64x2 0 0))
          (local.set $sgg (v128.const i64x2 0 0))
          (local.set $sug (v128.const i64x2 0 0))
          (local.set $smg (v128.const i64x2 0 0))
          (loop $one
            (local.set $q (i32.load (i32.add (local.get $m) (i32.shr_u (local.get $i) (i32.const 2)))))
            (local.set $s (f32x4.mul
              (f32x4.replace_lane 3
                (f32x4.replace_lane 2
                  (f32x4.replace_lane 1
                    (f32x4.splat (f32.load (i32.add (local.get $t)
                      (i32.and (i32.shl (local.get $q) (i32.const 2)) (i32.const 1020)))))
                    (f32.load (i32.add (local.get $t)
                      (i32.and (i32.shr_u (local.get $q) (i32.const 6)) (i32.const 1020)))))
                  (f32.load (i32.add (local.get $t)
                    (i32.and (i32.shr_u (local.get $q) (i32.const 14)) (i32.const 1020)))))
                (f32.load (i32.add (local.get $t)
                  (i32.and (i32.shr_u (local.get $q) (i32.const 22)) (i32.const 1020)))))
              (local.get $absv)))
            (local.set $gv (f32x4.mul (v128.load (i32.add (local.get $g) (local.get $i))) (local.get $gsv)))
            (local.set $pv (v128.load (i32.add (local.get $p) (local.get $i))))
            (local.set $c (f32x4.add (f32x4.mul (local.get $s) (local.get $beta1v))
              (f32x4.mul (local.get $gv) (local.get $dwv))))
            (FMA $uv $sdv $sdw (local.get $pv) (v128.or
              (v128.and (f32x4.gt (local.get $c) (local.get $zero)) (local.get $lrv))
              (v128.and (f32x4.lt (local.get $c) (local.get $zero)) (local.get $neglrv))))
            (SUM $smm (local.get $s) (local.get $s))
            (SUM $spp (local.get $pv) (local.get $pv))
            (SUM $suu (local.get $uv) (local.get $uv))
            (SUM $sgg (local.get $gv) (local.get $gv))
            (SUM $sug (local.get $uv) (local.get $gv))
            (SUM $smg (local.get $s) (local.get $gv))
            (local.set $i (i32.add (local.get $i) (i32.const 16)))
            (br_if $one (i32.lt_u (local.get $i) (local.get $run_end))))
          (local.set $mm (call $widen_add (local.get $mm) (local.get $smm)))
          (local.set $pp (call $widen_add (local.get $pp) (local.get $spp)))
          (local.set $uu (call $widen_add (local.get $uu) (local.get $suu)))
          (local.set $gg (call $widen_add (local.get $gg) (local.get $sgg)))
          (local.set $ug (call $widen_add (local.get $ug) (local.get $sug)))
          (local.set $mg (call $widen_add (local.get $mg) (local.get $smg)))
          (br_if $run (i32.lt_u (local.get $i) (i32.const 1024))))
        (local.set $p (i32.add (local.get $p) (i32.const 1024)))
        (local.set $g (i32.add (local.get $g) (i32.const 1024)))
        (local.set $m (i32.add (local.get $m) (i32.const 260)))
        (br $block)))
    (call $lanes (local.get $mm))
    (call $lanes (local.get $pp))
    (call $lanes (local.get $uu))
    (call $lanes (local.get $gg))
    (call $lanes (local.get $ug))
    (call $lanes (local.get $mg)))
  ;; @fma }
)
