#!/usr/bin/python3
"""Continues a @decoupled/lionw checkpoint in PyTorch.

    torch_checkpoint.py IN GRADS OUT

Reads the safetensors checkpoint IN (written by the library, or by this
script), rebuilds the project's PyTorch Lion (bench/torch_lion.py, held bit
for bit to the torch fixtures) with the saved groups and moments, takes one
step per gradient set in GRADS (a
safetensors file of tensors named "<step>/<parameter>"), and writes the
result to OUT in the same format, so the library can load and continue it.

Only the standard library and torch 1.13: the safetensors format is read and
written by hand here, as a PyTorch user without the safetensors package would.
"""

import importlib.util
import json
import os
import struct
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
MOMENT_PREFIX = "exp_avg/"
# 8-bit moments: U8 codes under MOMENT_PREFIX, their F32 scales, the codebook once
ABSMAX_PREFIX = "exp_avg_absmax/"
QMAP_NAME = "exp_avg_qmap"
DTYPES = {"F32": (torch.float32, 4), "U8": (torch.uint8, 1)}


def load_lion():
    spec = importlib.util.spec_from_file_location("torch_lion", os.path.join(HERE, "..", "..", "bench", "torch_lion.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Lion


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    metadata = header.pop("__metadata__", {})
    body = data[8 + length :]
    tensors = {}
    for name, entry in header.items():
        dtype, _ = DTYPES[entry["dtype"]]
        begin, end = entry["data_offsets"]
        tensors[name] = torch.frombuffer(bytearray(body[begin:end]), dtype=dtype).reshape(entry["shape"]).clone()
    return tensors, metadata


def write_safetensors(path, tensors, metadata):
    header = {"__metadata__": metadata}
    offset = 0
    for name, tensor in tensors:
        dtype = "U8" if tensor.dtype == torch.uint8 else "F32"
        size = tensor.numel() * DTYPES[dtype][1]
        header[name] = {"dtype": dtype, "shape": list(tensor.shape), "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for _, tensor in tensors:
            array = tensor.detach().contiguous().numpy()
            f.write(array.tobytes() if tensor.dtype == torch.uint8 else array.astype("<f4").tobytes())


def main():
    source, grads_path, out = sys.argv[1:4]
    Lion = load_lion()
    tensors, metadata = read_safetensors(source)
    assert metadata["format"] == "lionw-checkpoint" and metadata["format_version"] == "1", metadata
    saved = json.loads(metadata["lionw_state"])
    params = {}
    groups = []
    for group in saved["paramGroups"]:
        for name in group["params"]:
            params[name] = torch.nn.Parameter(tensors[name].clone())
        groups.append({
            "params": [params[name] for name in group["params"]],
            "lr": group["lr"],
            "betas": tuple(group["betas"]),
            "weight_decay": group["weightDecay"],
            "maximize": group["maximize"],
        })
    opt = Lion(groups, code=tensors.get(QMAP_NAME))
    for torch_group, group in zip(opt.groups, saved["paramGroups"]):
        torch_group["initial_lr"] = group["initialLr"]  # the constructor set it to lr
    for name, param in params.items():
        moment = tensors.get(MOMENT_PREFIX + name)
        if moment is None:
            continue
        if moment.dtype == torch.uint8:
            opt.quantized[param] = (moment.reshape(-1).clone(), tensors[ABSMAX_PREFIX + name].clone())
        else:
            opt.exp_avg[param] = moment.clone()
    grads, _ = read_safetensors(grads_path)
    steps = sorted({int(key.split("/", 1)[0]) for key in grads})
    for step in steps:
        for name, param in params.items():
            grad = grads.get(f"{step}/{name}")
            param.grad = None if grad is None else grad.clone()
        opt.step()
    out_groups = []
    for torch_group, group in zip(opt.groups, saved["paramGroups"]):
        out_groups.append({**group, "lr": torch_group["lr"]})
    state = {"paramGroups": out_groups, "iterations": saved["iterations"] + len(steps)}
    names = [name for group in saved["paramGroups"] for name in group["params"]]
    out_tensors = [(name, params[name]) for name in names]
    for name in names:
        param = params[name]
        if param in opt.quantized:
            codes, absmax = opt.quantized[param]
            out_tensors += [(MOMENT_PREFIX + name, codes.reshape(param.shape)), (ABSMAX_PREFIX + name, absmax)]
        elif param in opt.exp_avg:
            out_tensors.append((MOMENT_PREFIX + name, opt.exp_avg[param]))
    if opt.quantized:
        out_tensors.append((QMAP_NAME, opt.code))
    write_safetensors(out, out_tensors, {
        "format": "lionw-checkpoint",
        "format_version": "1",
        "lionw_state": json.dumps(state),
        "written_by": f"torch {torch.__version__}",
    })


if __name__ == "__main__":
    main()
