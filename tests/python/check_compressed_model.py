"""Checks what modkit made of a model scripted by PyTorch: its module listing, the sparsity of the pruned Linear weights, and that forward still runs."""
import sys

import torch

SPARSITY = 0.5  # the sparsity prune_scripted_model was given


def class_name(module: torch.jit.ScriptModule) -> str:
    # A loaded ScriptModule keeps its Python class name in original_name.
    return module.original_name


def main(original_path: str, pruned_path: str, listing_path: str) -> int:
    original = torch.jit.load(original_path)
    pruned = torch.jit.load(pruned_path)
    original.eval()
    pruned.eval()
    failures = []

    # 1. modkit lists the modules as PyTorch's named_modules() does: same names, order and class names.
    expected = [(name, class_name(m)) for name, m in original.named_modules()]
    with open(listing_path, encoding="utf-8") as f:
        listed = [tuple(line.rstrip("\n").split("\t")) for line in f if line.strip("\n")]
    listed = [(t[0], t[1]) if len(t) == 2 else ("", t[0]) for t in listed]  # the root has an empty name
    if listed != expected:
        failures.append("modkit's module listing differs from named_modules():\n"
                        f"  modkit:  {listed}\n  pytorch: {expected}")
    classes = {c for _, c in listed}
    for needed in ("Linear", "TransformerEncoderLayer", "MultiheadAttention", "NonDynamicallyQuantizableLinear",
                   "LayerNorm", "Sequential"):
        if needed not in classes:
            failures.append(f"modkit's module listing has no '{needed}' module")

    # 2. Exactly the modules of class Linear are pruned. MultiheadAttention's out_proj is a
    # NonDynamicallyQuantizableLinear: targets ["Linear"] match class names exactly (as in
    # llmcompressor), so it and in_proj_weight are left alone.
    modules = dict(original.named_modules())
    pruned_modules = dict(pruned.named_modules())
    linear = [name for name, m in modules.items() if class_name(m) == "Linear"]
    if len(linear) != 5:  # encoder.linear1, encoder.linear2, mlp.0, mlp.2, head
        failures.append(f"expected 5 Linear modules, found {linear}")
    for name, p in pruned.named_parameters():
        owner, _, leaf = name.rpartition(".")
        before = dict(original.named_parameters())[name]
        zeros = int((p == 0).sum())
        if leaf == "weight" and owner in linear:
            print(f"{name:32s} {zeros:6d}/{p.numel():<6d} zeros ({100.0 * zeros / p.numel():.1f} %)")
            if abs(zeros - SPARSITY * p.numel()) > 1:
                failures.append(f"{name}: expected {SPARSITY * p.numel():.1f} zeros within one, found {zeros}")
            kept = p != 0
            if not torch.equal(p[kept], before[kept]):
                failures.append(f"{name}: weights that were not pruned changed")
            # magnitude pruning: every zeroed weight is no larger than every kept one
            if zeros and before[~kept].abs().max() > before[kept].abs().min():
                failures.append(f"{name}: a pruned weight is larger than a kept one")
        elif not torch.equal(p, before):
            failures.append(f"{name}: changed, but it is not the weight of a Linear module")
    if class_name(pruned_modules["encoder.self_attn.out_proj"]) != "NonDynamicallyQuantizableLinear":
        failures.append("encoder.self_attn.out_proj is no longer a NonDynamicallyQuantizableLinear")

    # 3. Forward still runs, in PyTorch, with the pruned weights.
    x = torch.randn(2, 8, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        y = pruned(x)
        y0 = original(x)
    if tuple(y.shape) != (2, 8, 10):
        failures.append(f"forward: expected an output of shape [2, 8, 10], found {list(y.shape)}")
    elif not torch.isfinite(y).all():
        failures.append("forward: the output has non-finite values")
    elif torch.equal(y, y0):
        failures.append("forward: the pruned model computes exactly what the original does")

    for f in failures:
        print("FAIL:", f, file=sys.stderr)
    if not failures:
        print(f"ok: modkit lists {len(listed)} modules as PyTorch does, prunes the {len(linear)} Linear weights to "
              f"{SPARSITY:.0%}, and torch {torch.__version__} runs the result")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
