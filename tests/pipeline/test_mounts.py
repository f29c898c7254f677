"""Mount path translation (pipeline/mounts.py) and its use by the Slurm executor when jobs run in containers."""

from __future__ import annotations

import pytest

from assay.core.config import ConfigError
from assay.pipeline import run_cmd
from assay.pipeline.job import JobHandle
from assay.pipeline.mounts import (
    parse_mounts,
    text_on_host,
    to_container,
    to_host,
    translate_text,
    unmounted_paths,
)

MOUNTS = parse_mounts(["/lustre/fsw:/workspace", "/lustre/fsw/models:/models:ro", "/data"])


@pytest.mark.parametrize(
    "host, inside",
    [
        ("/lustre/fsw/exp/out.jsonl", "/workspace/exp/out.jsonl"),
        ("/lustre/fsw", "/workspace"),
        ("/lustre/fsw/models/qwen", "/models/qwen"),  # the longest mount wins
        ("/lustre/fsw/./exp/../exp", "/workspace/exp"),
        ("/data/x", "/data/x"),  # a bare path mounts under its own name
        ("/lustre/fsw2/x", None),  # whole path components only
        ("/home/me/x", None),
    ],
)
def test_to_container_and_back(host, inside):
    assert to_container(host, MOUNTS) == inside
    if inside is not None:
        assert to_host(inside, MOUNTS) in (host, "/lustre/fsw/exp")  # normalised


def test_paths_inside_arguments_are_translated_and_others_left_alone():
    text = "++input_file=/lustre/fsw/a.jsonl --model=/lustre/fsw/models/m,/home/x http://127.0.0.1:{port}/v1"
    assert translate_text(text, MOUNTS) == (
        "++input_file=/workspace/a.jsonl --model=/models/m,/home/x http://127.0.0.1:{port}/v1"
    )


def test_what_a_container_job_wrote_is_shown_with_the_launchers_paths(tmp_path):
    tail = "Traceback ...\nFileNotFoundError: '/workspace/exp/in.jsonl' (model /models/qwen, /usr/lib/x, /home/y)"
    assert text_on_host(tail, MOUNTS) == (
        "Traceback ...\nFileNotFoundError: '/lustre/fsw/exp/in.jsonl' (model /lustre/fsw/models/qwen, /usr/lib/x, "
        "/home/y)"
    )
    assert text_on_host(tail, []) == tail
    handle = JobHandle("stage", "7", "slurm", tmp_path, mounts=MOUNTS)
    (tmp_path / "7_0_log.err").write_text("writing /workspace/exp/out.jsonl\n")
    assert handle.tail().strip() == "writing /lustre/fsw/exp/out.jsonl"


def test_unmounted_paths_are_the_existing_ones_under_no_mount(tmp_path):
    here = tmp_path.resolve()
    texts = [f"++input_file={here}", "/usr/bin/env", "/lustre/fsw/not-here", "/nowhere/at/all", "print(7 // 2)", "/tmp"]
    assert unmounted_paths(texts, MOUNTS) == [str(here)]
    assert unmounted_paths(texts, [*MOUNTS, *parse_mounts([f"{here}:/exp"])]) == []


def slurm_cluster(tmp_path, mounts: str) -> str:
    path = tmp_path / "cluster.yaml"
    path.write_text(
        "executor: slurm\naccount: a\npartition: p\ngpus_per_node: 8\n"
        f"containers: {{assay: /c/assay.sqsh}}\nmounts: {mounts}\n"
    )
    return str(path)


def test_a_container_job_gets_container_paths_and_the_launcher_keeps_its_own(tmp_path, capsys):
    exp = tmp_path / "exp"
    data = exp / "in.jsonl"
    exp.mkdir()
    data.write_text("{}\n")
    cluster = slurm_cluster(tmp_path, f"['{exp}:/workspace']")
    run_cmd(f"wc -l {data}", cluster=cluster, expname="m", output_dir=str(exp / "out"), dry_run=True)
    text = capsys.readouterr().out
    assert "bash -c 'wc -l /workspace/in.jsonl'" in text  # what the job runs
    assert f"#SBATCH --output={exp}/out/logs/m/%j_0_log.out" in text  # what Slurm writes, on the host
    assert "python -u -m submitit.core._submit /workspace/out/logs/m" in text  # where the job reads its pickle


def test_a_path_under_no_mount_stops_the_submission_before_anything_is_submitted(tmp_path):
    other = tmp_path / "elsewhere"
    other.mkdir()
    cluster = slurm_cluster(tmp_path, "['/lustre:/workspace']")
    with pytest.raises(
        ConfigError, match=r"m's log folder .* is under no mount of cluster 'cluster' \(mounts: /lustre:/workspace\)"
    ):
        run_cmd("true", cluster=cluster, expname="m", output_dir=str(other), dry_run=True)


def test_a_deferred_eval_keeps_the_launchers_paths(tmp_path, capsys):
    """It submits the eval from inside its container with the launcher's paths (which must be mounted under the
    same names there), so its own arguments are not translated."""
    from assay.pipeline import eval as run_eval

    exp = tmp_path / "exp"
    exp.mkdir()
    cluster = slurm_cluster(tmp_path, f"['{exp}:/workspace']")
    run_cmd("true", cluster=cluster, expname="train", output_dir=str(exp), dry_run=True)
    run_eval(
        benchmarks="smallmath",
        model=f"{exp}/checkpoint-*",
        output_dir=str(exp / "eval"),
        cluster=cluster,
        run_after="train",
        dry_run=True,
    )
    text = capsys.readouterr().out
    assert f'"model": "{exp}/checkpoint-*"' in text and f'"mounts": ["{exp}:/workspace"]' in text


def eval_with_images(tmp_path, containers: str, model: str | None = None, **kwargs) -> None:
    """A dry-run eval of `model` (default <exp>/model) on a Slurm config with these images and <exp> mounted as
    /workspace; kwargs go to eval."""
    from assay.pipeline import eval as run_eval

    exp = tmp_path / "exp"
    exp.mkdir(exist_ok=True)
    cluster = tmp_path / "cluster.yaml"
    cluster.write_text(
        "executor: slurm\naccount: a\npartition: p\ngpus_per_node: 8\n"
        f"containers: {containers}\nmounts: ['{exp}:/workspace']\n"
    )
    run_eval(model=model or f"{exp}/model", output_dir=str(exp / "eval"), cluster=str(cluster), dry_run=True, **kwargs)


def test_each_component_runs_as_its_own_step_in_its_own_image(tmp_path, capsys, monkeypatch):
    """The dry run of an eval with a server and a sandbox, on a cluster config with three images and a mount: the
    server's step runs vLLM's own command in the vllm image (no assay there), the sandbox's step runs in its image,
    the stage runs in assay's, each with the container's paths (the model keeps the launcher's name, which it is
    served and asked for under); the exact batch-script lines."""
    from assay.pipeline.executors import slurm_steps

    monkeypatch.setattr(slurm_steps, "draw_port", lambda taken: 6000)
    exp = tmp_path / "exp"
    eval_with_images(
        tmp_path,
        "{assay: /c/assay.sqsh, vllm: 'vllm/vllm-openai:v0.11.0', sandbox: /c/sandbox.sqsh}",
        benchmarks="smallcode",
        server_gpus=8,
        server_port=5000,
        with_sandbox=True,
    )
    generation = capsys.readouterr().out.split("### ")[1]
    logs = f"{exp}/eval/logs/eval"
    mount = f"--container-mounts={exp}:/workspace"
    server = (
        f"( srun --overlap --nodes=1 --ntasks=1 --ntasks-per-node=1 --job-name=assay_eval-server "
        f'--container-image=vllm/vllm-openai:v0.11.0 {mount} env sh -c \'trap "" USR2; exec "$@"\' sh '
        f"python3 -m vllm.entrypoints.cli.main serve --model /workspace/model --served-model-name {exp}/model "
        "--host 127.0.0.1 --port 5000 --tensor-parallel-size 8 "
        f'>> {logs}/"${{SLURM_JOB_ID}}"_server.log 2>&1; echo $? > {logs}/"${{SLURM_JOB_ID}}"_server.exit ) &'
    )
    sandbox = (
        f"( srun --overlap --nodes=1 --ntasks=1 --ntasks-per-node=1 --job-name=assay_eval-sandbox "
        f'--container-image=/c/sandbox.sqsh {mount} env sh -c \'trap "" USR2; exec "$@"\' sh '
        "python -m assay.sandbox.server --host=127.0.0.1 --port=6000 --session-ttl=3600 "
        f'>> {logs}/"${{SLURM_JOB_ID}}"_sandbox.log 2>&1; echo $? > {logs}/"${{SLURM_JOB_ID}}"_sandbox.exit ) &'
    )
    setup = generation.split("# setup\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert setup == [server, "export ASSAY_SANDBOX_TOKEN=\"$(od -An -N24 -tx1 /dev/urandom | tr -d ' \\n')\"", sandbox]
    assert f"--container-image=/c/assay.sqsh {mount} python -u -m submitit.core._submit /workspace/eval/logs/eval" in (
        generation
    )
    assert "++input_file=/workspace/eval/eval-results/smallcode/test.jsonl" in generation
    assert f"++server.model={exp}/model" in generation  # requests name the model as the server serves it
    assert "# service server: its own step, started by the batch script below, healthy at " in generation


def test_a_multi_node_server_in_an_image_without_assay_is_refused_before_submission(tmp_path):
    with pytest.raises(ConfigError, match="on 2 nodes in the image vllm/vllm-openai:v0.11.0 needs each node's rank"):
        eval_with_images(
            tmp_path, "{vllm: 'vllm/vllm-openai:v0.11.0'}", benchmarks="smallmath", server_gpus=8, server_nodes=2
        )


def test_services_without_an_image_of_their_own_run_in_the_stages_image(tmp_path, capsys):
    """Only `containers.assay`: the sandbox (an assay module) runs in that image, as it did inside the stage's
    container before it had a step of its own; never on the host with the image's `python`."""
    exp = tmp_path / "exp"
    exp.mkdir()
    cluster = slurm_cluster(tmp_path, f"['{exp}:/workspace']")
    run_cmd("true", cluster=cluster, expname="m", output_dir=str(exp / "out"), with_sandbox=True, dry_run=True)
    [step] = [line for line in capsys.readouterr().out.splitlines() if "--job-name=assay_m-sandbox" in line]
    assert "--container-image=/c/assay.sqsh" in step and " python -m assay.sandbox.server " in step


def test_a_model_the_servers_image_would_not_see_stops_the_submission(tmp_path):
    model = tmp_path / "models" / "m"
    model.mkdir(parents=True)
    with pytest.raises(ConfigError, match=f"the server in vllm/vllm-openai:v0.11.0 would need {model}"):
        eval_with_images(
            tmp_path, "{vllm: 'vllm/vllm-openai:v0.11.0'}", model=str(model), benchmarks="smallmath", server_gpus=8
        )
