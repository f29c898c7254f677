"""Local jobs in containers: each component through the container runtime (podman here), on the host network.

The real test (the `podman` fixture: tests/conftest.py) runs podman with an exploded image: this machine's own root folder, mounted as an overlay (so the
container has the same Python and assay, and writes nowhere but the mounts). The command and the sandbox each run
in a container of their own and find each other on 127.0.0.1; a launcher path under a mount reaches the command
under the container's name, and what it writes there is on the host afterwards.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest

from assay.pipeline import run_cmd
from assay.pipeline.cluster import ClusterConfigError
from assay.pipeline.executors.local_containers import run_prefix


def local_config(tmp_path: Path, exp: Path) -> str:
    path = tmp_path / "local-containers.yaml"
    python_bin = str(Path(sys.executable).parent)
    path.write_text(
        "executor: local\n"
        "containers: {assay: /, sandbox: /}\n"
        f"mounts: ['{exp}:/exp']\n"
        f"env_vars: ['PATH={python_bin}:/usr/bin:/bin']\n"
    )
    return str(path)


def test_the_run_prefix_of_an_image_and_of_an_exploded_folder(tmp_path):
    assert run_prefix("docker", "vllm/vllm-openai:v0.11.0", ["/a:/b"], ["ASSAY_X", "PATH"]) == [
        "docker", "run", "--rm", "--network=host", "-v", "/a:/b", "-e", "ASSAY_X", "-e", "PATH",
        "vllm/vllm-openai:v0.11.0",
    ]  # fmt: skip
    assert run_prefix("podman", str(tmp_path), [], [])[-2:] == ["--rootfs", f"{tmp_path}:O"]


def test_a_local_config_with_images_needs_a_container_runtime(tmp_path, monkeypatch):
    monkeypatch.setenv("ASSAY_CONTAINER_RUNTIME", "no-such-runtime")
    exp = tmp_path / "exp"
    exp.mkdir()
    with pytest.raises(ClusterConfigError, match="no-such-runtime is not installed here"):
        run_cmd("true", cluster=local_config(tmp_path, exp), output_dir=str(exp), dry_run=True)


def test_the_command_and_the_sandbox_each_run_in_a_container(podman, tmp_path, capsys):
    exp = tmp_path / "exp"
    exp.mkdir()
    client = (
        "import os, sys; from assay.sandbox.client import SandboxClient, configured_url; "
        "c = SandboxClient(configured_url(None)); "
        "inside = c.execute('import os; print(os.path.exists(\"/run/.containerenv\"))').stdout.strip(); "
        "open(sys.argv[1], 'w').write(f'command in a container: {os.path.exists(\"/run/.containerenv\")}, "
        'sandbox in a container: {inside}, sandbox says {c.execute("print(6 * 7)").stdout.strip()}\')'
    )
    run_cmd(
        f"python -c {shlex.quote(client)} {exp}/report.txt",
        cluster=local_config(tmp_path, exp),
        expname="in-containers",
        output_dir=str(exp),
        with_sandbox=True,
    )
    report = (exp / "report.txt").read_text()
    assert report == "command in a container: True, sandbox in a container: True, sandbox says 42"
    console = capsys.readouterr().out
    assert f"running podman run --rm --network=host -v {exp}:/exp " in console and "/exp/report.txt" in console
    sandbox_log = next((exp / "logs" / "in-containers").glob("*_sandbox.log")).read_text()
    assert f"starting sandbox: podman run --rm --network=host -v {exp}:/exp " in sandbox_log


def test_an_eval_with_chained_jobs_on_a_local_config_with_images(podman, tmp_path, capsys):
    """Every job is checked before the first is submitted, while its upstreams have no id yet."""
    from assay.pipeline import eval as run_eval

    exp = tmp_path / "exp"
    exp.mkdir()
    run_eval(
        benchmarks="smallcode",
        model="smollm2",
        server_address="http://127.0.0.1:9/v1",
        output_dir=str(exp / "eval"),
        cluster=local_config(tmp_path, exp),
        dry_run=True,
    )
    text = capsys.readouterr().out
    assert text.count("### eval") == 2 and "starts after: afterok:" in text
    assert f"podman run --rm --network=host -v {exp}:/exp" in text and "--rootfs /:O" in text
