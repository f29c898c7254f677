"""dry_run prints exactly what would be submitted (submitit's own sbatch script) and submits nothing."""

import re

import pytest

from assay.pipeline import run_cmd, wrap_arguments


def slurm_config(tmp_path, extra=""):
    path = tmp_path / "cluster.yaml"
    path.write_text(
        "executor: slurm\naccount: acct\npartition: gpu\ntime: '02:00:00'\ngpus_per_node: 8\n"
        f"containers: {{assay: /c/assay.sqsh}}\nmounts: [/lustre:/workspace, '{tmp_path}:/exp']\n"
        "env_vars: [HF_HOME=/workspace/hf]\n"
        "sbatch_args: {qos: high}\njob_name_prefix: 'x_'\n" + extra
    )
    return str(path)


def test_slurm_dry_run_prints_the_sbatch_script_and_submits_nothing(tmp_path, capsys):
    out_dir = tmp_path / "out"
    run_cmd(
        "python train.py",
        cluster=slurm_config(tmp_path),
        expname="a",
        output_dir=str(out_dir),
        num_gpus=4,
        num_nodes=2,
        dry_run=True,
        ctx=wrap_arguments("++lr='1e-4' ++name='two words'"),
    )
    text = capsys.readouterr().out
    for line in [
        "#SBATCH --account=acct",
        "#SBATCH --partition=gpu",
        "#SBATCH --time=120",
        "#SBATCH --nodes=2",
        "#SBATCH --gpus-per-node=4",
        "#SBATCH --job-name=x_a",
        "#SBATCH --qos=high",
        "export HF_HOME=/workspace/hf",
    ]:
        assert line in text, line
    assert (
        "--container-image=/c/assay.sqsh" in text and f"--container-mounts=/lustre:/workspace,{tmp_path}:/exp" in text
    )
    assert "bash -c 'python train.py ++lr=1e-4 '\"'\"'++name=two words'\"'\"''" in text
    assert not out_dir.exists()


def test_dry_run_chain_shows_each_dependency(tmp_path, capsys):
    cluster = slurm_config(tmp_path)
    run_cmd("echo a", cluster=cluster, expname="A", output_dir=str(tmp_path), dry_run=True)
    run_cmd(
        "echo b", cluster=cluster, expname="B", output_dir=str(tmp_path), run_after="A", dry_run=True, dependent_jobs=1
    )
    run_cmd(
        "echo c",
        cluster=cluster,
        expname="C",
        output_dir=str(tmp_path),
        run_after="B",
        dry_run=True,
        dependency_type="afterany",
    )
    text = capsys.readouterr().out
    ids = re.findall(r"### (\w) \[(dryrun-\d+)\]", text)
    assert [name for name, _ in ids] == ["A", "B", "B", "C"]
    a_id, b_id, b_copy_id = ids[0][1], ids[1][1], ids[2][1]
    assert f"#SBATCH --dependency=afterok:{a_id}" in text
    assert f"#SBATCH --dependency=afterany:{b_id}" in text  # the follow-up copy
    assert f"#SBATCH --dependency=afterany:{b_copy_id}" in text  # C after the last copy of B
    blocks = re.split(r"(?=^### )", text, flags=re.M)[1:]
    # a job whose upstream fails later is cancelled by Slurm, whatever the cluster's DependencyParameters say
    assert "--kill-on-invalid-dep" not in blocks[0]
    assert all("#SBATCH --kill-on-invalid-dep=yes" in b for b in blocks[1:])


def test_job_asking_for_more_gpus_than_the_cluster_has_is_refused(tmp_path):
    import pytest

    with pytest.raises(ValueError, match="asks for 16 GPUs per node"):
        run_cmd("x", cluster=slurm_config(tmp_path), expname="big", output_dir=str(tmp_path), num_gpus=16, dry_run=True)


def test_local_dry_run_prints_the_command(tmp_path, capsys):
    run_cmd("echo hi", cluster="local", expname="h", output_dir=str(tmp_path / "o"), dry_run=True)
    text = capsys.readouterr().out
    assert "bash -c 'echo hi'" in text and "dry run: nothing submitted" in text
    assert not (tmp_path / "o").exists()


def test_dry_run_warns_about_an_unset_passed_env_var_and_a_real_submission_refuses(tmp_path, capsys, monkeypatch):
    import pytest

    from assay.pipeline.cluster import ClusterConfigError

    monkeypatch.delenv("MY_SECRET_FOR_TEST", raising=False)
    cluster = slurm_config(tmp_path, extra="")
    text = (
        open(cluster)
        .read()
        .replace("env_vars: [HF_HOME=/workspace/hf]", "env_vars: [HF_HOME=/workspace/hf, MY_SECRET_FOR_TEST]")
    )
    open(cluster, "w").write(text)
    run_cmd("x", cluster=cluster, expname="w", output_dir=str(tmp_path), dry_run=True)
    assert "MY_SECRET_FOR_TEST" in capsys.readouterr().out
    with pytest.raises(ClusterConfigError, match="MY_SECRET_FOR_TEST"):
        run_cmd("x", cluster=cluster, expname="w", output_dir=str(tmp_path))


def test_an_eval_whose_server_needs_more_gpus_than_a_node_has_submits_nothing(tmp_path, capsys):
    """Every job is checked before the first is submitted: nothing is half-submitted."""
    from assay.core.config import ConfigError
    from assay.pipeline import eval as assay_eval

    with pytest.raises(ConfigError, match="asks for 16 GPUs per node; cluster .* has 8"):
        assay_eval(benchmarks="smallmath", output_dir=str(tmp_path / "o"), model="/m", cluster=slurm_config(tmp_path),
                   server_gpus=16, dry_run=True)  # fmt: skip
    assert "dry run: nothing submitted" not in capsys.readouterr().out
