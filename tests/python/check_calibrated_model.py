"""Checks from PyTorch a model modkit compressed with calibration: it loads, runs, stays close to the original (closer than a data-free baseline), and its weights are on the promised grids and masks."""
import json
import sys

import torch


def fail(message: str) -> None:
    print(f"FAIL: {message}")
    sys.exit(1)


def linears(model: torch.jit.ScriptModule):
    for name, module in model.named_modules():
        if module.original_name == "Linear" and name != "lm_head":
            yield name, module


def check_grid(name: str, module, bits: int, group: int) -> None:
    w, scale = module.weight.detach().float(), module.weight_scale.detach().float()
    zero = module.weight_zero_point.detach().float()
    rows, cols = w.shape
    per_group = scale.reshape(rows, -1)
    columns_per_scale = cols // per_group.shape[1]
    if group and columns_per_scale != group:
        fail(f"{name}: expected one scale per {group} columns, found one per {columns_per_scale}")
    q = w / per_group.repeat_interleave(columns_per_scale, dim=1) + zero.reshape(rows, -1).repeat_interleave(columns_per_scale, dim=1)
    if not torch.allclose(q, q.round(), atol=2e-3):
        fail(f"{name}: weights are not on the int{bits} grid (max distance {(q - q.round()).abs().max().item():.4f})")
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    if q.round().min() < lo or q.round().max() > hi:
        fail(f"{name}: codes outside [{lo}, {hi}]")


def check_2_4(name: str, module) -> None:
    w = module.weight.detach()
    zeros = (w.reshape(w.shape[0], -1, 4) == 0).sum(-1)
    if (zeros < 2).any():
        fail(f"{name}: {(zeros < 2).sum().item()} groups of 4 have fewer than 2 zeros")


def relative_error(original, compressed, batches) -> float:
    num = den = 0.0
    with torch.no_grad():
        for ids in batches:
            a, b = original(ids), compressed(ids)
            if not torch.isfinite(b).all():
                fail("the compressed model's output is not finite")
            num += (a - b).pow(2).sum().item()
            den += a.pow(2).sum().item()
    return (num / den) ** 0.5


def main(original_path: str, compressed_path: str, heldout_path: str, kind: str, report_path: str, bound: str,
         baseline_path: str = "") -> int:
    original = torch.jit.load(original_path)
    compressed = torch.jit.load(compressed_path)
    heldout = torch.load(heldout_path)
    report = json.load(open(report_path))
    for stage in report["stages"]:
        if stage["pipeline"] != "sequential" or len(stage["blocks"]) != 4:
            fail(f"stage {stage['name']}: expected the sequential pipeline over 4 blocks, found {stage['pipeline']} over {stage['blocks']}")
    checked = 0
    for name, module in linears(compressed):
        if kind == "w8a8":
            check_grid(name, module, 8, 0)
        else:
            check_grid(name, module, 4, 128)
            check_2_4(name, module)
        checked += 1
    if checked != 24:
        fail(f"expected 24 quantized Linear modules (4 layers x 6), found {checked}")
    if kind == "w8a8":
        # a scripted ModuleList cannot be indexed from Python: getattr by name
        norm = getattr(compressed.layers, "0").input_layernorm.weight.detach()
        if torch.allclose(norm, getattr(original.layers, "0").input_layernorm.weight.detach()):
            fail("SmoothQuant left input_layernorm's weight unchanged")
    err = relative_error(original, compressed, heldout)
    print(f"{kind}: {checked} Linear modules on the grid; held-out relative logit error {err:.4f} (bound {bound})")
    if err > float(bound):
        fail(f"held-out relative logit error {err:.4f} exceeds {bound}")
    if baseline_path:
        # the same compression without calibration data must do worse
        base = relative_error(original, torch.jit.load(baseline_path), heldout)
        print(f"{kind}: data-free baseline error {base:.4f}; calibrated / baseline = {err / base:.2f}")
        if err >= base:
            fail(f"the calibrated model's error {err:.4f} is not below the data-free baseline's {base:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:8]))
