#!/usr/bin/env python3
"""DecoupledLionW in PyTorch ops, this project's own: the bench's PyTorch peer.

The update rule of docs/parity.md, per tensor, as a PyTorch user writes it
(and as MosaicML's optimizer runs it): decay, the signed step, the moment.

    python3 bench/torch_lion.py ELEMENTS|COUNTxSIZE THREADS
        then one line per request on stdin: "K" runs K timed steps and
        prints {"ms": [...]}; "quit" exits.
    python3 bench/torch_lion.py --check tests/fixtures/reference.json
        replays every fixture case (lr schedules, skipped parameters) and
        exits non-zero unless params and exp_avg match bit for bit, so the
        bench times the same update the library computes (and the PyTorch
        interop tests, tests/interop/, continue checkpoints with it).
"""

import base64
import json
import sys
import time

import torch


class Lion:
    """Lion with decoupled weight decay scaled by lr / initial_lr."""

    def __init__(self, groups):
        # groups: [{"params": [tensor], "lr", "betas", "weight_decay", "maximize" (optional)}]
        self.groups = [dict(g, initial_lr=g["lr"]) for g in groups]
        self.exp_avg = {}

    @torch.no_grad()
    def step(self):
        for group in self.groups:
            lr, initial_lr, wd = group["lr"], group["initial_lr"], group["weight_decay"]
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None or not p.requires_grad:
                    continue
                grad = -p.grad if group.get("maximize", False) else p.grad
                m = self.exp_avg.get(p)
                if m is None:
                    m = self.exp_avg[p] = torch.zeros_like(p)
                if wd != 0:
                    p.mul_(1 - (lr / initial_lr) * wd)
                p.add_(torch.lerp(m, grad, 1 - beta1).sign_(), alpha=-lr)
                m.lerp_(grad, 1 - beta2)


def decode(text, shape):
    values = torch.frombuffer(bytearray(base64.b64decode(text)), dtype=torch.float32)
    return values.reshape(shape) if shape else values.reshape(())


def same_bits(a, b):
    return torch.equal(a.contiguous().view(torch.int32), b.contiguous().view(torch.int32)) or (
        # NaN payloads may differ; NaN matches NaN
        bool(((a == b) | (torch.isnan(a) & torch.isnan(b))).all())
    )


def check(path):
    fixtures = json.load(open(path, encoding="utf-8"))
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


def serve(shape, threads):
    torch.set_num_threads(threads)
    count, size = (int(x) for x in shape.split("x")) if "x" in shape else (1, int(shape))
    params = [torch.nn.Parameter(torch.randn(size)) for _ in range(count)]
    for p in params:
        p.grad = torch.randn(size)
    lion = Lion([{"params": params, "lr": 1e-4, "betas": (0.9, 0.99), "weight_decay": 1e-4}])
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
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    serve(sys.argv[1], int(sys.argv[2]))
