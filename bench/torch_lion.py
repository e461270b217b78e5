#!/usr/bin/env python3
"""DecoupledLionW in PyTorch ops, this project's own: the bench's PyTorch peer.

The update rule of docs/parity.md, per tensor, as a PyTorch user writes it
(and as MosaicML's optimizer runs it): decay, the signed step, the moment.

    python3 bench/torch_lion.py ELEMENTS|COUNTxSIZE THREADS
        then one line per request on stdin: "K" runs K timed steps and
        prints {"ms": [...]}; "quit" exits.
    python3 bench/torch_lion.py ELEMENTS|COUNTxSIZE THREADS uint8
        the same with 8-bit moments (bitsandbytes' blockwise state and rule).
    python3 bench/torch_lion.py --check tests/fixtures/reference.json
        replays every fixture case (lr schedules, skipped parameters) and
        exits non-zero unless params and exp_avg match bit for bit, so the
        bench times the same update the library computes (and the PyTorch
        interop tests, tests/interop/, continue checkpoints with it).
    python3 bench/torch_lion.py --check tests/fixtures/uint8_reference.json
        the same for the 8-bit fixtures: params, codes and scales.

With a codebook (``Lion(groups, code=...)``: bitsandbytes' signed dynamic
map, 256 float32 values), tensors of 4,096 elements or more keep
bitsandbytes' 8-bit state, as its pure-PyTorch path computes it (a code a
parameter, a float32 absmax a block of 256), with this library's decay:

    s = code[q] * absmax[block]                             (dequantize)
    p = p * decay - lr * sign(s * beta1 + g * (1 - beta1))    (two rounded products, then the sum)
    s = s * beta2, then s += (1 - beta2) * g                 (torch's mul_ and add_ with alpha)
    full block: absmax = max|s|;  x = s * (1 / max(absmax, 1e-38))
    tail block: absmax = max(max|s|, 1e-38);  x = s / absmax
    q = bucketize(clamp(x, -1, 1), midpoints)                (a midpoint takes the lower code)
"""

import base64
import json
import os
import re
import sys
import time

import torch

BLOCK = 256
MIN_8BIT_ELEMENTS = 4096


def dequantize_8bit(q, absmax, code):
    out = code[q.long()]
    for b in range(absmax.numel()):
        out[b * BLOCK:(b + 1) * BLOCK] *= absmax[b]
    return out


def quantize_8bit(s, midpoints):
    n = s.numel()
    full = n // BLOCK
    absmax = torch.zeros(full + (1 if n % BLOCK else 0), dtype=torch.float32)
    scaled = torch.empty_like(s)
    if full:
        body = s[: full * BLOCK].view(full, BLOCK)
        absmax[:full] = body.abs().max(dim=1).values
        inv = 1 / absmax[:full].clamp(min=1e-38)
        scaled[: full * BLOCK] = (body * inv.view(-1, 1)).clamp(-1, 1).reshape(-1)
    if n % BLOCK:
        tail = s[full * BLOCK:]
        absmax[-1] = tail.abs().max().clamp(min=1e-38)
        scaled[full * BLOCK:] = (tail / absmax[-1]).clamp(-1, 1)
    q = torch.bucketize(scaled, midpoints, right=False).to(torch.uint8)
    return q, absmax


def lion_8bit_step(p, g, q, absmax, code, midpoints, lr, initial_lr, beta1, beta2, wd):
    """One step of the 8-bit rule on a flat tensor; returns the new codes and scales."""
    s = dequantize_8bit(q, absmax, code)
    decay = 1 - (lr / initial_lr) * wd
    p.mul_(decay)
    c = s * beta1 + g * (1 - beta1)
    p.add_(torch.sign(c), alpha=-lr)
    s.mul_(beta2).add_(g, alpha=1 - beta2)
    return quantize_8bit(s, midpoints)


def library_codebook():
    """The library's codebook, read from its source (src/store/dynamic_map.ts: the bits, in code order)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src", "store", "dynamic_map.ts")
    source = open(path, encoding="utf-8").read()
    table = source[source.index("CODE_BITS"):source.index("];")]
    bits = [int(h, 16) for h in re.findall(r"0x([0-9a-f]{8})", table)]
    assert len(bits) == 256, len(bits)
    return torch.tensor(bits, dtype=torch.int64).to(torch.int32).view(torch.float32)


class Lion:
    """Lion with decoupled weight decay scaled by lr / initial_lr; 8-bit moments given a codebook."""

    def __init__(self, groups, code=None):
        # groups: [{"params": [tensor], "lr", "betas", "weight_decay", "maximize" (optional)}]
        self.groups = [dict(g, initial_lr=g["lr"]) for g in groups]
        self.exp_avg = {}
        # 8-bit moments: parameter -> (codes, absmax), for tensors of MIN_8BIT_ELEMENTS or more
        self.code = code
        self.midpoints = None if code is None else (code[1:] + code[:-1]) / 2
        self.quantized = {}

    def keeps_8bit(self, p):
        return self.code is not None and p.numel() >= MIN_8BIT_ELEMENTS

    @torch.no_grad()
    def step(self):
        for group in self.groups:
            lr, initial_lr, wd = group["lr"], group["initial_lr"], group["weight_decay"]
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None or not p.requires_grad:
                    continue
                grad = -p.grad if group.get("maximize", False) else p.grad
                if self.keeps_8bit(p):
                    self._step_8bit(p, grad, lr, initial_lr, beta1, beta2, wd)
                    continue
                m = self.exp_avg.get(p)
                if m is None:
                    m = self.exp_avg[p] = torch.zeros_like(p)
                if wd != 0:
                    p.mul_(1 - (lr / initial_lr) * wd)
                p.add_(torch.lerp(m, grad, 1 - beta1).sign_(), alpha=-lr)
                m.lerp_(grad, 1 - beta2)

    def _step_8bit(self, p, grad, lr, initial_lr, beta1, beta2, wd):
        n = p.numel()
        fresh = (torch.zeros(n, dtype=torch.uint8), torch.zeros((n + BLOCK - 1) // BLOCK))
        q, absmax = self.quantized.get(p, fresh)
        self.quantized[p] = lion_8bit_step(p.view(-1), grad.reshape(-1), q, absmax, self.code,
                                           self.midpoints, lr, initial_lr, beta1, beta2, wd)


def decode(text, shape):
    values = torch.frombuffer(bytearray(base64.b64decode(text)), dtype=torch.float32)
    return values.reshape(shape) if shape else values.reshape(())


def same_bits(a, b):
    return torch.equal(a.contiguous().view(torch.int32), b.contiguous().view(torch.int32)) or (
        # NaN payloads may differ; NaN matches NaN
        bool(((a == b) | (torch.isnan(a) & torch.isnan(b))).all())
    )


def check_8bit(fixtures):
    code = library_codebook()
    failures = 0
    for case in fixtures["cases"]:
        p = torch.nn.Parameter(decode(case["p0"], [case["n"]]).clone())
        lion = Lion([{"params": [p], "lr": case["lr"], "betas": (case["beta1"], case["beta2"]),
                      "weight_decay": case["weightDecay"]}], code=code)
        for t, grad in enumerate(case["grads"]):
            p.grad = decode(grad, [case["n"]]) * case["gradScale"]
            lion.step()
            q, absmax = lion.quantized[p]
            expected_q = torch.frombuffer(bytearray(base64.b64decode(case["codes"][t])), dtype=torch.uint8)
            ok = same_bits(p.detach(), decode(case["params"][t], [case["n"]])) and torch.equal(q, expected_q)
            ok = ok and same_bits(absmax, decode(case["absmax"][t], [absmax.numel()]))
            if not ok:
                failures += 1
                print(f"{case['name']} step {t + 1}: differs from the fixture")
    print(f"{len(fixtures['cases'])} 8-bit cases, {failures} differences")
    return 1 if failures else 0


def check(path):
    fixtures = json.load(open(path, encoding="utf-8"))
    if "block" in fixtures:
        return check_8bit(fixtures)
    failures = 0
    # the bench's Lion is the rule with maximize: the cases with cautious groups test an option of the library's
    plain = [c for c in fixtures["cases"] if not any(g.get("cautious") for g in c["groups"])]
    for case in plain:
        params = {}
        for spec in case["params"]:
            t = torch.nn.Parameter(decode(spec["initial"], spec["shape"]).clone())
            t.requires_grad_(spec["requiresGrad"])
            params[spec["name"]] = t
        defaults = case["defaults"]
        lion = Lion([
            {
                "params": [params[n] for n in g["params"]],
                "lr": g.get("lr", defaults["lr"]),
                "betas": tuple(g.get("betas", defaults["betas"])),
                "weight_decay": g.get("weightDecay", defaults["weightDecay"]),
                "maximize": g.get("maximize", defaults.get("maximize", False)),
            }
            for g in case["groups"]
        ])
        for index, step in enumerate(case["steps"]):
            for group, lr in zip(lion.groups, step["lrs"]):
                group["lr"] = lr
            for name, t in params.items():
                grad = step["grads"][name]
                t.grad = None if grad is None else decode(grad, list(t.shape)).clone()
            lion.step()
            for name, t in params.items():
                expected = step["expAvg"][name]
                state = lion.exp_avg.get(t)
                ok = same_bits(t.detach(), decode(step["params"][name], list(t.shape)))
                ok = ok and (state is None) == (expected is None)
                if ok and state is not None:
                    ok = same_bits(state, decode(expected, list(t.shape)))
                if not ok:
                    failures += 1
                    print(f"{case['name']} step {index + 1} {name}: differs from the fixture")
    left_out = len(fixtures["cases"]) - len(plain)
    print(f"{len(plain)} cases ({left_out} with cautious groups left out), {failures} differences")
    return 1 if failures else 0


def serve(shape, threads, moments="float32"):
    torch.set_num_threads(threads)
    count, size = (int(x) for x in shape.split("x")) if "x" in shape else (1, int(shape))
    params = [torch.nn.Parameter(torch.randn(size)) for _ in range(count)]
    for p in params:
        p.grad = torch.randn(size)
    code = library_codebook() if moments == "uint8" else None
    lion = Lion([{"params": params, "lr": 1e-4, "betas": (0.9, 0.99), "weight_decay": 1e-4}], code=code)
    print(json.dumps({"ready": True, "torch": torch.__version__}), flush=True)
    for line in sys.stdin:
        if line.startswith("q"):
            break
        times = []
        for _ in range(int(line)):
            t0 = time.perf_counter()
            lion.step()
            times.append((time.perf_counter() - t0) * 1e3)
        print(json.dumps({"ms": times}), flush=True)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        sys.exit(check(sys.argv[2]))
    if len(sys.argv) not in (3, 4) or sys.argv[3:] not in ([], ["uint8"]):
        sys.exit(__doc__)
    serve(sys.argv[1], int(sys.argv[2]), *sys.argv[3:])
