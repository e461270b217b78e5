;; The `wasm` kernel: the DecoupledLionW update with f32x4 SIMD, in place on
;; the store's memory, with the metric partial sums in the same pass.
;;
;; Built by `deno task build:wasm` (src/wasm/build_wasm.ts, wabt) into
;; src/wasm/lion_wasm.ts, twice: once importing a shared memory and once a
;; plain one (the line marked MEMORY below). Bit-exact with the scalar `js`
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
;; - `update`, `update_metrics`: `f32x4.relaxed_madd`, where
;;   `relaxed_madd_is_fused()` says it rounds once (x86 with FMA, ARM64).
;;   Their loops are written out with no calls: V8 does not inline calls,
;;   and they would cost a third of the speed.
;; - `update_exact`, `update_metrics_exact`: float64 lanes rounded to odd,
;;   then to float32, which is correct rounding without a hardware fma.
;;
;; Memory: a segment of n elements is processed as whole 64-byte lines. The
;; store's slots are 64-byte aligned and their padding is zero and written
;; by nobody else; zero padding stays zero under the update (g = m = p = 0
;; gives 0) and adds 0 to every sum.
;;
;; Sums (the metrics, the non-finite scan) are taken in float64: products
;; of float32 values are exact there, and each lane adds them with
;; f64x2.relaxed_madd. Squares in float32 would be faster (metrics on: 1.9×
;; the time of metrics off instead of 2.3×) but overflow to Infinity for
;; |x| > 1.8e19, which would flag a finite gradient as non-finite, and
;; vanish for |x| < 1e-23.

(module
  (import "env" "memory" (memory 0 65536 shared)) ;; MEMORY

  ;; (1 + 2^-23)^2 - (1 + 2^-22) is 2^-46 when fused and 0 when rounded twice.
  (func (export "relaxed_madd_is_fused") (result i32)
    (f32.ne
      (f32x4.extract_lane 0
        (f32x4.relaxed_madd
          (f32x4.splat (f32.const 0x1.000002p+0))
          (f32x4.splat (f32.const 0x1.000002p+0))
          (f32x4.splat (f32.const -0x1.000004p+0))))
      (f32.const 0)))

  ;; ---- helpers --------------------------------------------------------

  ;; A splat mask: all ones when $on, else zeros (selects g over m as lerp's base).
  (func $mask (param $on i32) (result v128)
    (i32x4.splat (i32.sub (i32.const 0) (local.get $on))))

  ;; Byte length of n elements rounded up to whole 64-byte lines.
  (func $line_bytes (param $n i32) (result i32)
    (i32.and (i32.add (i32.shl (local.get $n) (i32.const 2)) (i32.const 63)) (i32.const -64)))

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

  ;; ---- fused path -----------------------------------------------------

  ;; The update of n elements at byte offsets $p, $g, $m.
  ;; $c1/$g1: coefficient and base of the direction's lerp (1 - beta1);
  ;; $c2/$g2: of the moment's lerp (1 - beta2); $decay: 1 - decay * wd;
  ;; $gs: the gradient scale (1 leaves g exactly as it is).
  (func (export "update")
    (param $p i32) (param $g i32) (param $m i32) (param $n i32)
    (param $lr f32) (param $c1 f32) (param $g1 i32) (param $c2 f32) (param $g2 i32) (param $decay f32)
    (param $gs f32)
    (local $end i32) (local $lrv v128) (local $neglrv v128) (local $c1v v128) (local $sel1 v128) (local $c2v v128)
    (local $sel2 v128) (local $decayv v128) (local $gsv v128) (local $zero v128)
    (local $gv v128) (local $mv v128) (local $d v128) (local $dir v128)
    (local.set $end (i32.add (local.get $p) (call $line_bytes (local.get $n))))
    (local.set $lrv (f32x4.splat (local.get $lr)))
    (local.set $neglrv (f32x4.neg (local.get $lrv)))
    (local.set $c1v (f32x4.splat (local.get $c1)))
    (local.set $sel1 (call $mask (local.get $g1)))
    (local.set $c2v (f32x4.splat (local.get $c2)))
    (local.set $sel2 (call $mask (local.get $g2)))
    (local.set $decayv (f32x4.splat (local.get $decay)))
    (local.set $gsv (f32x4.splat (local.get $gs)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $gv (f32x4.mul (v128.load (local.get $g)) (local.get $gsv)))
        (local.set $mv (v128.load (local.get $m)))
        (local.set $d (f32x4.sub (local.get $gv) (local.get $mv)))
        (local.set $dir
          (f32x4.relaxed_madd (local.get $c1v) (local.get $d)
            (v128.bitselect (local.get $gv) (local.get $mv) (local.get $sel1))))
        ;; p * decay - lr * sign(dir)
        (v128.store (local.get $p)
          (f32x4.sub
            (f32x4.mul (v128.load (local.get $p)) (local.get $decayv))
            (v128.or
              (v128.and (f32x4.gt (local.get $dir) (local.get $zero)) (local.get $lrv))
              (v128.and (f32x4.lt (local.get $dir) (local.get $zero)) (local.get $neglrv)))))
        (v128.store (local.get $m)
          (f32x4.relaxed_madd (local.get $c2v) (local.get $d)
            (v128.bitselect (local.get $gv) (local.get $mv) (local.get $sel2))))
        (local.set $p (i32.add (local.get $p) (i32.const 16)))
        (local.set $g (i32.add (local.get $g) (i32.const 16)))
        (local.set $m (i32.add (local.get $m) (i32.const 16)))
        (br $next))))

  ;; The update, plus the partial sums of the metrics over the post-step m
  ;; and p, the step's g and the reference's step tensor
  ;; u = lr * sign(lerp(m, g, 1 - beta1)) + $sd * p, with $sd = -wd * decay:
  ;; returns Σm², Σp², Σu², Σg², Σu·g, Σm·g.
  (func (export "update_metrics")
    (param $p i32) (param $g i32) (param $m i32) (param $n i32)
    (param $lr f32) (param $c1 f32) (param $g1 i32) (param $c2 f32) (param $g2 i32) (param $decay f32)
    (param $gs f32)
    (param $sd f32)
    (result f64 f64 f64 f64 f64 f64)
    (local $end i32) (local $lrv v128) (local $neglrv v128) (local $c1v v128) (local $sel1 v128) (local $c2v v128)
    (local $sel2 v128) (local $decayv v128) (local $gsv v128) (local $sdv v128) (local $zero v128)
    (local $gv v128) (local $mv v128) (local $pv v128) (local $uv v128) (local $d v128) (local $dir v128)
    (local $gl v128) (local $gh v128) (local $ml v128) (local $mh v128)
    (local $pl v128) (local $ph v128) (local $ul v128) (local $uh v128)
    ;; two accumulators per sum (low and high lanes): a single one would make
    ;; every iteration wait for two dependent fma latencies
    (local $mm v128) (local $pp v128) (local $uu v128) (local $gg v128) (local $ug v128) (local $mg v128)
    (local $mm2 v128) (local $pp2 v128) (local $uu2 v128) (local $gg2 v128) (local $ug2 v128) (local $mg2 v128)
    (local.set $end (i32.add (local.get $p) (call $line_bytes (local.get $n))))
    (local.set $lrv (f32x4.splat (local.get $lr)))
    (local.set $neglrv (f32x4.neg (local.get $lrv)))
    (local.set $c1v (f32x4.splat (local.get $c1)))
    (local.set $sel1 (call $mask (local.get $g1)))
    (local.set $c2v (f32x4.splat (local.get $c2)))
    (local.set $sel2 (call $mask (local.get $g2)))
    (local.set $decayv (f32x4.splat (local.get $decay)))
    (local.set $gsv (f32x4.splat (local.get $gs)))
    (local.set $sdv (f32x4.splat (local.get $sd)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $gv (f32x4.mul (v128.load (local.get $g)) (local.get $gsv)))
        (local.set $mv (v128.load (local.get $m)))
        (local.set $d (f32x4.sub (local.get $gv) (local.get $mv)))
        (local.set $dir
          (f32x4.relaxed_madd (local.get $c1v) (local.get $d)
            (v128.bitselect (local.get $gv) (local.get $mv) (local.get $sel1))))
        (local.set $pv
          (f32x4.sub
            (f32x4.mul (v128.load (local.get $p)) (local.get $decayv))
            (v128.or
              (v128.and (f32x4.gt (local.get $dir) (local.get $zero)) (local.get $lrv))
              (v128.and (f32x4.lt (local.get $dir) (local.get $zero)) (local.get $neglrv)))))
        (local.set $mv
          (f32x4.relaxed_madd (local.get $c2v) (local.get $d)
            (v128.bitselect (local.get $gv) (local.get $mv) (local.get $sel2))))
        (v128.store (local.get $p) (local.get $pv))
        (v128.store (local.get $m) (local.get $mv))
        ;; the reference's step tensor, from the post-step moment
        (local.set $dir
          (f32x4.relaxed_madd (local.get $c1v) (f32x4.sub (local.get $gv) (local.get $mv))
            (v128.bitselect (local.get $gv) (local.get $mv) (local.get $sel1))))
        (local.set $uv
          (f32x4.relaxed_madd (local.get $sdv) (local.get $pv)
            (v128.or
              (v128.and (f32x4.gt (local.get $dir) (local.get $zero)) (local.get $lrv))
              (v128.and (f32x4.lt (local.get $dir) (local.get $zero)) (local.get $neglrv)))))
        ;; float64 halves of each vector, then the six sums
        (local.set $gl (f64x2.promote_low_f32x4 (local.get $gv)))
        (local.set $gh (f64x2.promote_low_f32x4
          (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $gv) (local.get $gv))))
        (local.set $ml (f64x2.promote_low_f32x4 (local.get $mv)))
        (local.set $mh (f64x2.promote_low_f32x4
          (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $mv) (local.get $mv))))
        (local.set $pl (f64x2.promote_low_f32x4 (local.get $pv)))
        (local.set $ph (f64x2.promote_low_f32x4
          (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $pv) (local.get $pv))))
        (local.set $ul (f64x2.promote_low_f32x4 (local.get $uv)))
        (local.set $uh (f64x2.promote_low_f32x4
          (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $uv) (local.get $uv))))
        (local.set $mm (f64x2.relaxed_madd (local.get $ml) (local.get $ml) (local.get $mm)))
        (local.set $mm2 (f64x2.relaxed_madd (local.get $mh) (local.get $mh) (local.get $mm2)))
        (local.set $pp (f64x2.relaxed_madd (local.get $pl) (local.get $pl) (local.get $pp)))
        (local.set $pp2 (f64x2.relaxed_madd (local.get $ph) (local.get $ph) (local.get $pp2)))
        (local.set $uu (f64x2.relaxed_madd (local.get $ul) (local.get $ul) (local.get $uu)))
        (local.set $uu2 (f64x2.relaxed_madd (local.get $uh) (local.get $uh) (local.get $uu2)))
        (local.set $gg (f64x2.relaxed_madd (local.get $gl) (local.get $gl) (local.get $gg)))
        (local.set $gg2 (f64x2.relaxed_madd (local.get $gh) (local.get $gh) (local.get $gg2)))
        (local.set $ug (f64x2.relaxed_madd (local.get $ul) (local.get $gl) (local.get $ug)))
        (local.set $ug2 (f64x2.relaxed_madd (local.get $uh) (local.get $gh) (local.get $ug2)))
        (local.set $mg (f64x2.relaxed_madd (local.get $ml) (local.get $gl) (local.get $mg)))
        (local.set $mg2 (f64x2.relaxed_madd (local.get $mh) (local.get $gh) (local.get $mg2)))
        (local.set $p (i32.add (local.get $p) (i32.const 16)))
        (local.set $g (i32.add (local.get $g) (i32.const 16)))
        (local.set $m (i32.add (local.get $m) (i32.const 16)))
        (br $next)))
    (call $lanes (f64x2.add (local.get $mm) (local.get $mm2)))
    (call $lanes (f64x2.add (local.get $pp) (local.get $pp2)))
    (call $lanes (f64x2.add (local.get $uu) (local.get $uu2)))
    (call $lanes (f64x2.add (local.get $gg) (local.get $gg2)))
    (call $lanes (f64x2.add (local.get $ug) (local.get $ug2)))
    (call $lanes (f64x2.add (local.get $mg) (local.get $mg2))))

  ;; Σg² of n elements at byte offset $g, in float64 (non-finite when any g is).
  ;; A whole 64-byte line per iteration, into four independent accumulators
  ;; (one would make every vector wait for the previous one's fma latency).
  (func (export "sum_squares") (param $g i32) (param $n i32) (result f64)
    (local $end i32) (local $v v128) (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local.set $end (i32.add (local.get $g) (call $line_bytes (local.get $n))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $g) (local.get $end)))
        (local.set $v (v128.load offset=0 (local.get $g)))
        (local.set $a0
          (f64x2.relaxed_madd
            (f64x2.promote_low_f32x4
              (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $v) (local.get $v)))
            (f64x2.promote_low_f32x4
              (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $v) (local.get $v)))
            (f64x2.relaxed_madd
              (f64x2.promote_low_f32x4 (local.get $v))
              (f64x2.promote_low_f32x4 (local.get $v))
              (local.get $a0))))
        (local.set $v (v128.load offset=16 (local.get $g)))
        (local.set $a1
          (f64x2.relaxed_madd
            (f64x2.promote_low_f32x4
              (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $v) (local.get $v)))
            (f64x2.promote_low_f32x4
              (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $v) (local.get $v)))
            (f64x2.relaxed_madd
              (f64x2.promote_low_f32x4 (local.get $v))
              (f64x2.promote_low_f32x4 (local.get $v))
              (local.get $a1))))
        (local.set $v (v128.load offset=32 (local.get $g)))
        (local.set $a2
          (f64x2.relaxed_madd
            (f64x2.promote_low_f32x4
              (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $v) (local.get $v)))
            (f64x2.promote_low_f32x4
              (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $v) (local.get $v)))
            (f64x2.relaxed_madd
              (f64x2.promote_low_f32x4 (local.get $v))
              (f64x2.promote_low_f32x4 (local.get $v))
              (local.get $a2))))
        (local.set $v (v128.load offset=48 (local.get $g)))
        (local.set $a3
          (f64x2.relaxed_madd
            (f64x2.promote_low_f32x4
              (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $v) (local.get $v)))
            (f64x2.promote_low_f32x4
              (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $v) (local.get $v)))
            (f64x2.relaxed_madd
              (f64x2.promote_low_f32x4 (local.get $v))
              (f64x2.promote_low_f32x4 (local.get $v))
              (local.get $a3))))
        (local.set $g (i32.add (local.get $g) (i32.const 64)))
        (br $next)))
    (call $lanes
      (f64x2.add
        (f64x2.add (local.get $a0) (local.get $a1))
        (f64x2.add (local.get $a2) (local.get $a3)))))

  ;; ---- exact path (no hardware fma): the same rule through $fma_exact ----

  ;; One vector of the update through the exact fma: stores p and m, returns
  ;; nothing; $c1w/$c2w are the coefficients as f64x2.
  (func $update_vector_exact
    (param $p i32) (param $g i32) (param $m i32)
    (param $lrv v128) (param $c1w v128) (param $sel1 v128) (param $c2w v128) (param $sel2 v128)
    (param $decayv v128) (param $gsv v128)
    (local $gv v128) (local $mv v128) (local $d v128)
    (local.set $gv (f32x4.mul (v128.load (local.get $g)) (local.get $gsv)))
    (local.set $mv (v128.load (local.get $m)))
    (local.set $d (f32x4.sub (local.get $gv) (local.get $mv)))
    (v128.store (local.get $p)
      (f32x4.sub
        (f32x4.mul (v128.load (local.get $p)) (local.get $decayv))
        (call $lr_sign
          (call $fma_exact (local.get $c1w) (local.get $d)
            (v128.bitselect (local.get $gv) (local.get $mv) (local.get $sel1)))
          (local.get $lrv))))
    (v128.store (local.get $m)
      (call $fma_exact (local.get $c2w) (local.get $d)
        (v128.bitselect (local.get $gv) (local.get $mv) (local.get $sel2)))))

  ;; `update` without a hardware fma.
  (func (export "update_exact")
    (param $p i32) (param $g i32) (param $m i32) (param $n i32)
    (param $lr f32) (param $c1 f32) (param $g1 i32) (param $c2 f32) (param $g2 i32) (param $decay f32)
    (param $gs f32)
    (local $end i32) (local $gsv v128)
    (local.set $end (i32.add (local.get $p) (call $line_bytes (local.get $n))))
    (local.set $gsv (f32x4.splat (local.get $gs)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (call $update_vector_exact (local.get $p) (local.get $g) (local.get $m)
          (f32x4.splat (local.get $lr))
          (f64x2.splat (f64.promote_f32 (local.get $c1))) (call $mask (local.get $g1))
          (f64x2.splat (f64.promote_f32 (local.get $c2))) (call $mask (local.get $g2))
          (f32x4.splat (local.get $decay)) (local.get $gsv))
        (local.set $p (i32.add (local.get $p) (i32.const 16)))
        (local.set $g (i32.add (local.get $g) (i32.const 16)))
        (local.set $m (i32.add (local.get $m) (i32.const 16)))
        (br $next))))

  ;; $acc + x * y over both halves, in float64.
  (func $dot (param $acc v128) (param $x v128) (param $y v128) (result v128)
    (f64x2.relaxed_madd
      (f64x2.promote_low_f32x4 (call $high (local.get $x)))
      (f64x2.promote_low_f32x4 (call $high (local.get $y)))
      (f64x2.relaxed_madd
        (f64x2.promote_low_f32x4 (local.get $x))
        (f64x2.promote_low_f32x4 (local.get $y))
        (local.get $acc))))

  ;; `update_metrics` without a hardware fma: the update vector by vector,
  ;; then the sums from what it stored.
  (func (export "update_metrics_exact")
    (param $p i32) (param $g i32) (param $m i32) (param $n i32)
    (param $lr f32) (param $c1 f32) (param $g1 i32) (param $c2 f32) (param $g2 i32) (param $decay f32)
    (param $gs f32)
    (param $sd f32)
    (result f64 f64 f64 f64 f64 f64)
    (local $end i32) (local $gsv v128) (local $gv v128) (local $mv v128) (local $pv v128) (local $uv v128)
    (local $mm v128) (local $pp v128) (local $uu v128) (local $gg v128) (local $ug v128) (local $mg v128)
    (local.set $end (i32.add (local.get $p) (call $line_bytes (local.get $n))))
    (local.set $gsv (f32x4.splat (local.get $gs)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (call $update_vector_exact (local.get $p) (local.get $g) (local.get $m)
          (f32x4.splat (local.get $lr))
          (f64x2.splat (f64.promote_f32 (local.get $c1))) (call $mask (local.get $g1))
          (f64x2.splat (f64.promote_f32 (local.get $c2))) (call $mask (local.get $g2))
          (f32x4.splat (local.get $decay)) (local.get $gsv))
        (local.set $gv (f32x4.mul (v128.load (local.get $g)) (local.get $gsv)))
        (local.set $mv (v128.load (local.get $m)))
        (local.set $pv (v128.load (local.get $p)))
        (local.set $uv
          (f32x4.add
            (f32x4.mul (f32x4.splat (local.get $sd)) (local.get $pv))
            (call $lr_sign
              (call $fma_exact
                (f64x2.splat (f64.promote_f32 (local.get $c1)))
                (f32x4.sub (local.get $gv) (local.get $mv))
                (v128.bitselect (local.get $gv) (local.get $mv) (call $mask (local.get $g1))))
              (f32x4.splat (local.get $lr)))))
        (local.set $mm (call $dot (local.get $mm) (local.get $mv) (local.get $mv)))
        (local.set $pp (call $dot (local.get $pp) (local.get $pv) (local.get $pv)))
        (local.set $uu (call $dot (local.get $uu) (local.get $uv) (local.get $uv)))
        (local.set $gg (call $dot (local.get $gg) (local.get $gv) (local.get $gv)))
        (local.set $ug (call $dot (local.get $ug) (local.get $uv) (local.get $gv)))
        (local.set $mg (call $dot (local.get $mg) (local.get $mv) (local.get $gv)))
        (local.set $p (i32.add (local.get $p) (i32.const 16)))
        (local.set $g (i32.add (local.get $g) (i32.const 16)))
        (local.set $m (i32.add (local.get $m) (i32.const 16)))
        (br $next)))
    (call $lanes (local.get $mm))
    (call $lanes (local.get $pp))
    (call $lanes (local.get $uu))
    (call $lanes (local.get $gg))
    (call $lanes (local.get $ug))
    (call $lanes (local.get $mg)))
)
