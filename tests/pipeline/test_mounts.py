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
