#!/bin/sh
# Glue for the PyTorch interoperability tests: runs modkit's binaries and the Python checks in a scratch directory.
#
#   run_torch_interop.sh PYTHON WORKDIR python_loads_modkit_output            MODKIT_CLI   PLUGIN_DIR
#   run_torch_interop.sh PYTHON WORKDIR modkit_compresses_scripted_pytorch_model PRUNE_TOOL PLUGIN_DIR
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
  *)
    echo "$0: unknown test '$test'" >&2
    exit 2
    ;;
esac
