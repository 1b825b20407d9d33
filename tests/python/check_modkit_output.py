"""Loads the model `modkit demo --output` wrote with torch.jit.load, runs it, and checks the sparsity of its pruned Linear weights."""
import math
import sys

import torch

SPARSITY = 0.7  # final_sparsity of the demo's MagnitudePruningModifier
TARGET_SUFFIXES = ("_proj.weight", "fc1.weight", "fc2.weight")


def main(path: str) -> int:
    model = torch.jit.load(path)
    model.eval()
    failures = []

    with torch.no_grad():
        x = torch.randn(2, 8, 64, generator=torch.Generator().manual_seed(0))
        y = model(x)
    if tuple(y.shape) != (2, 8, 64):
        failures.append(f"forward: expected an output of shape [2, 8, 64], found {list(y.shape)}")
    if not torch.isfinite(y).all():
        failures.append("forward: the output has non-finite values")

    checked = 0
    for name, p in model.named_parameters():
        zeros = int((p == 0).sum())
        if name.startswith("lm_head"):
            print(f"{name:40s} {zeros:6d}/{p.numel():<6d} zeros (not a target)")
            if zeros != 0:
                failures.append(f"{name}: expected no zeros (lm_head is ignored), found {zeros}")
            continue
        if not name.endswith(TARGET_SUFFIXES):
            continue
        checked += 1
        expected = SPARSITY * p.numel()
        print(f"{name:40s} {zeros:6d}/{p.numel():<6d} zeros ({100.0 * zeros / p.numel():.1f} %)")
        if abs(zeros - expected) > 1:
            failures.append(f"{name}: expected {expected:.1f} zeros (70 % of {p.numel()}) within one, found {zeros}")
    if checked == 0:
        failures.append("no targeted Linear weight (*_proj.weight, fc1.weight, fc2.weight) in the model")

    for f in failures:
        print("FAIL:", f, file=sys.stderr)
    if not failures:
        print(f"ok: torch {torch.__version__} loads '{path}', runs forward, {checked} weights are 70 % sparse")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
