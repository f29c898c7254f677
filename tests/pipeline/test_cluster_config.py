"""Cluster configs are checked when loaded: misspelt, missing or mistyped fields name the fix."""

import pytest

from assay.pipeline.cluster import ClusterConfigError, load_cluster_config, parse_time_minutes


def write(tmp_path, text, name="mine.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_shipped_configs_load_by_name():
    assert load_cluster_config("local").executor == "local"
    slurm = load_cluster_config("slurm")
    assert slurm.executor == "slurm" and slurm.gpus_per_node == 8 and "vllm" in slurm.containers
    assert load_cluster_config("test-slurm").partition == "batch"


def test_a_misspelt_field_names_the_valid_one(tmp_path):
    path = write(tmp_path, "executor: slurm\nacount: abc\n")
    with pytest.raises(ClusterConfigError, match=r"unknown field 'acount'.*Did you mean 'account'"):
        load_cluster_config(path)


def test_missing_executor_is_an_error(tmp_path):
    with pytest.raises(ClusterConfigError, match="missing required field 'executor'"):
        load_cluster_config(write(tmp_path, "partition: batch\n"))


def test_wrong_types_and_values_are_errors(tmp_path, monkeypatch):
    with pytest.raises(ClusterConfigError, match="'gpus_per_node' expects int"):
        load_cluster_config(write(tmp_path, "executor: slurm\ngpus_per_node: eight\n"))
    with pytest.raises(ClusterConfigError, match="unknown executor .kubernetes.* Known: local, slurm"):
        load_cluster_config(write(tmp_path, "executor: kubernetes\n"))
    with pytest.raises(ClusterConfigError, match="not in Slurm's format"):
        load_cluster_config(write(tmp_path, "executor: slurm\ntime: 4 hours\n"))
    monkeypatch.setenv("ASSAY_CONTAINER_RUNTIME", "no-such-runtime")  # local images need a container runtime
    with pytest.raises(ClusterConfigError, match="runs local jobs in containers .assay., but no-such-runtime is not"):
        load_cluster_config(write(tmp_path, "executor: local\ncontainers: {assay: img}\n"))


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ClusterConfigError, match=r"No cluster config named 'slrum'.*Did you mean 'slurm'"):
        load_cluster_config("slrum")


def test_configs_are_found_in_the_folders_of_the_env_var(tmp_path, monkeypatch):
    write(tmp_path, "executor: slurm\npartition: gpu\n", name="mycluster.yaml")
    monkeypatch.setenv("ASSAY_CLUSTER_CONFIGS", str(tmp_path))
    assert load_cluster_config("mycluster").partition == "gpu"


def test_bare_env_var_must_be_set_and_is_not_copied(tmp_path, monkeypatch):
    cfg = load_cluster_config(write(tmp_path, "executor: slurm\nenv_vars: [A=1, SECRET_TOKEN]\n"))
    monkeypatch.delenv("SECRET_TOKEN", raising=False)
    with pytest.raises(ClusterConfigError, match="SECRET_TOKEN"):
        cfg.env()
    monkeypatch.setenv("SECRET_TOKEN", "s3cret")
    assert cfg.env() == {"A": "1"}


@pytest.mark.parametrize(
    "text, minutes", [("30", 30), ("04:00:00", 240), ("1-12:00:00", 2160), ("00:00:30", 1), ("2-0", 2880)]
)
def test_slurm_time_formats(text, minutes):
    assert parse_time_minutes(text) == minutes


def test_an_empty_required_field_and_a_line_break_are_errors(tmp_path):
    with pytest.raises(ClusterConfigError, match="field 'executor' expects str, got None"):
        load_cluster_config(write(tmp_path, "executor: null\n"))
    with pytest.raises(ClusterConfigError, match="field 'gpus_per_node' expects int, got None"):
        load_cluster_config(write(tmp_path, "executor: slurm\ngpus_per_node: null\n"))
    with pytest.raises(ClusterConfigError, match="field 'account' holds a control character"):
        load_cluster_config(write(tmp_path, 'executor: slurm\naccount: "acct\\n#SBATCH --qos=high"\n'))
    with pytest.raises(ClusterConfigError, match="field 'sbatch_args' holds a control character"):
        load_cluster_config(write(tmp_path, 'executor: slurm\nsbatch_args: {qos: "a\\rb"}\n'))
    assert load_cluster_config(write(tmp_path, "executor: slurm\naccount: null\n")).account is None
