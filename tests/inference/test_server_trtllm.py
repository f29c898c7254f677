"""TensorRT-LLM, added as one module (inference/servers/trtllm.py): its launch command, its limits refused
at submission, and an eval on a Slurm cluster that starts it (a dry run: no GPU or TensorRT-LLM here)."""

from __future__ import annotations

import pytest

from assay.core.config import ConfigError
from assay.inference.servers import SERVER_TYPES, ServerTypeError, get_server_type, server_command
from assay.pipeline import eval as assay_eval


def test_trtllm_serve_gets_the_model_first_and_its_snake_case_flags(monkeypatch):
    monkeypatch.delenv("ASSAY_TRTLLM_PYTHON", raising=False)
    launch = server_command(
        "trtllm", "/models/qwen", port=5000, served_model_name="qwen", server_gpus=4, server_args="--max_batch_size 512"
    )
    assert launch.argv == [
        "trtllm-serve", "/models/qwen", "--host", "127.0.0.1", "--port", "5000", "--backend", "pytorch",
        "--tp_size", "4", "--served_model_name", "qwen", "--max_batch_size", "512",
    ]  # fmt: skip
    assert launch.health_url == "http://127.0.0.1:5000/v1/models"


def test_the_console_script_beside_a_configured_interpreter_is_used(monkeypatch):
    monkeypatch.setenv("ASSAY_TRTLLM_PYTHON", "/envs/trt/bin/python")
    assert server_command("trtllm", "m", port=1, server_gpus=1).argv[0] == "/envs/trt/bin/trtllm-serve"


def test_cpu_and_multi_node_requests_are_refused():
    with pytest.raises(ServerTypeError, match="needs GPUs"):
        server_command("trtllm", "m", port=1, server_gpus=0)
    with pytest.raises(ServerTypeError, match="one node"):
        get_server_type("trtllm").check(server_gpus=8, server_nodes=2)


def test_it_is_a_registered_type_and_requests_may_carry_vllm_style_fields():
    assert "trtllm" in SERVER_TYPES.names()
    kind = get_server_type("trtllm")
    assert kind.starts_process and kind.sampling_extras and kind.keep_stop_string


def test_an_eval_refuses_a_cpu_trtllm_server_before_anything_is_submitted(tmp_path, capsys):
    with pytest.raises(ConfigError, match="TensorRT-LLM needs GPUs"):
        assay_eval(benchmarks="smallmath", output_dir=str(tmp_path), model="m", cluster="local",
                   server_type="trtllm", dry_run=True)  # fmt: skip
    assert capsys.readouterr().out == ""


def test_an_eval_on_slurm_starts_trtllm_beside_the_stage(tmp_path, capsys):
    cluster = tmp_path / "cluster.yaml"
    cluster.write_text("executor: slurm\naccount: a\npartition: gpu\ngpus_per_node: 8\n")
    assay_eval(benchmarks="smallmath", output_dir=str(tmp_path / "out"), model="/models/qwen", cluster=str(cluster),
               server_type="trtllm", server_gpus=8, dry_run=True)  # fmt: skip
    text = capsys.readouterr().out
    assert "--server_type=trtllm" in text and "--server_gpus=8" in text and "#SBATCH --gpus-per-node=8" in text


def test_an_unknown_server_type_lists_the_known_ones(tmp_path):
    with pytest.raises(
        ConfigError, match=r"unknown server type 'trtlm'\. Did you mean 'trtllm'\?.*Known: openai, sglang, trtllm, vllm"
    ):
        assay_eval(benchmarks="smallmath", output_dir=str(tmp_path), model="m", cluster="local",
                   server_type="trtlm", dry_run=True)  # fmt: skip
