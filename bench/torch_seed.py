#!/usr/bin/env python3
"""The seed's DecoupledLionW under PyTorch, for `deno task bench`.

The class is read out of the seed file at run time (see
tests/fixtures/generate.py), never copied. Usage:

    python3 bench/torch_seed.py ELEMENTS|COUNTxSIZE THREADS [SEED_FILE]

then one line per request on stdin: "K" runs K steps and prints
{"ms": [...]}; "quit" exits.
"""

import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures"))
from generate import find_seed, load_reference_class  # noqa: E402


def main():
    shape, threads = sys.argv[1], int(sys.argv[2])
    seed = sys.argv[3] if len(sys.argv) > 3 else find_seed()
    torch.set_num_threads(threads)
    count, size = (int(x) for x in shape.split("x")) if "x" in shape else (1, int(shape))
    params = [torch.nn.Parameter(torch.randn(size)) for _ in range(count)]
    for p in params:
        p.grad = torch.randn(size)
    opt = load_reference_class(seed)(params, lr=1e-4, betas=(0.9, 0.99), weight_decay=1e-4)
    print(json.dumps({"ready": True, "torch": torch.__version__}), flush=True)
    for line in sys.stdin:
        if line.startswith("q"):
            break
        times = []
        for _ in range(int(line)):
            t0 = time.perf_counter()
            opt.step()
            times.append((time.perf_counter() - t0) * 1e3)
        print(json.dumps({"ms": times}), flush=True)


if __name__ == "__main__":
    main()
