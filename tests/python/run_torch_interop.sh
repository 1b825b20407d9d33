#!/bin/sh
# Glue for the PyTorch interoperability tests: runs modkit's binaries and the Python checks in a scratch directory.
#
#   run_torch_interop.sh PYTHON WORKDIR python_loads_modkit_output            MODKIT_CLI   PLUGIN_DIR
#   run_torch_interop.sh PYTHON WORKDIR modkit_compresses_scripted_pytorch_model PRUNE_TOOL PLUGIN_DIR
#   run_torch_interop.sh PYTHON WORKDIR modkit_calibrates_scripted_pytorch_model MODKIT_CLI PLUGIN_DIR
#
# Exits 77 (CTest's SKIP_RETURN_CODE) when PYTHON cannot import torch.
set -eu

if [ $# -ne 5 ]; then
  echo "usage: $0 PYTHON WORKDIR TEST BINARY PLUGIN_DIR" >&2
  exit 2
fi
python=$1 work=$2 test=$3 binary=$4 plugin_dir=$5
here=$(cd "$(dirname "$0")" && pwd)

if ! "$python" -c "import torch" >/dev/null 2>&1; then
  echo "SKIPPED: '$python' cannot import torch; install PyTorch for it (Debian: apt-get install python3-torch)"
  exit 77
fi

rm -rf "$work"
mkdir -p "$work"
cd "$work"

case "$test" in
  python_loads_modkit_output)
    # modkit prunes a generated transformer in a short training loop and saves it; PyTorch loads it.
    "$binary" --plugin-dir "$plugin_dir" demo --output "$work/demo.pt"
    "$python" "$here/check_modkit_output.py" "$work/demo.pt"
    ;;
  modkit_compresses_scripted_pytorch_model)
    # PyTorch scripts a model; modkit loads, lists and prunes it; PyTorch loads the result and checks it.
    "$python" "$here/make_scripted_model.py" "$work/scripted.pt"
    "$binary" --plugin-dir "$plugin_dir" --input "$work/scripted.pt" --output "$work/pruned.pt" \
      --modules "$work/modules.tsv" --sparsity 0.5
    "$python" "$here/check_compressed_model.py" "$work/scripted.pt" "$work/pruned.pt" "$work/modules.tsv"
    ;;
  modkit_calibrates_scripted_pytorch_model)
    # PyTorch scripts a small LM and writes calibration batches with torch.save; modkit applies two
    # calibrated recipes (SmoothQuant + GPTQ W8A8 from TOML, SparseGPT 2:4 + GPTQ W4A16 from
    # llmcompressor YAML) with the sequential pipeline; PyTorch loads the results and checks them.
    "$python" "$here/make_calibration_model.py" "$work/lm.pt" "$work/calib.pt" "$work/heldout.pt"
    "$binary" --plugin-dir "$plugin_dir" apply --recipe "$here/data/smoothquant_gptq_w8a8.toml" \
      --model "$work/lm.pt" --calib "$work/calib.pt" --output "$work/w8a8.pt" --report "$work/w8a8.json"
    "$python" "$here/check_calibrated_model.py" "$work/lm.pt" "$work/w8a8.pt" "$work/heldout.pt" w8a8 "$work/w8a8.json" 0.05
    "$binary" --plugin-dir "$plugin_dir" apply --recipe "$here/data/sparsegpt_gptq_w4a16.yaml" \
      --model "$work/lm.pt" --calib "$work/calib.pt" --output "$work/w4a16.pt" --report "$work/w4a16.json"
    "$binary" --plugin-dir "$plugin_dir" apply --recipe "$here/data/magnitude_rtn_w4a16.toml" \
      --model "$work/lm.pt" --output "$work/baseline.pt"
    "$python" "$here/check_calibrated_model.py" "$work/lm.pt" "$work/w4a16.pt" "$work/heldout.pt" 2of4_w4a16 \
      "$work/w4a16.json" 0.6 "$work/baseline.pt"
    ;;
  *)
    echo "$0: unknown test '$test'" >&2
    exit 2
    ;;
esac
