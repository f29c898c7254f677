"""run_cmd through sbatch on the real one-node test cluster: single jobs, chains, copies, cancels, failures."""

import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assay.pipeline import JobFailedError, registry, run_cmd
from assay.pipeline.executors.slurm import slurm_states

pytestmark = pytest.mark.slurm
REPO = Path(__file__).resolve().parents[2]


def sacct_times(job_id: str) -> tuple[str, str, str]:
    """(state, start, end) of a job as accounting recorded them."""
    for _ in range(30):  # accounting rows can lag a few seconds behind the job
        out = subprocess.run(
            ["sacct", "-n", "-X", "-P", "-o", "State,Start,End", "-j", job_id], capture_output=True, text=True
        ).stdout.strip()
        if out and "Unknown" not in out.split("|")[2]:
            state, start, end = out.splitlines()[0].split("|")
            return state.split()[0], start, end
        time.sleep(1)
    raise AssertionError(f"no final accounting row for job {job_id}: {out!r}")


def wait_final(handle, timeout_s=120):
    deadline = time.monotonic() + timeout_s
    while not handle.done():
        assert time.monotonic() < deadline, f"{handle.describe()} still {handle.state()}"
        time.sleep(0.5)
    return handle.state()


def test_single_job_runs_through_sbatch(slurm_cluster, tmp_path):
    exp = run_cmd(
        "echo hi from $SLURM_JOB_ID", cluster=slurm_cluster, expname="single", output_dir=str(tmp_path), wait=True
    )
    handle = exp.final[0]
    assert f"hi from {handle.job_id}" in handle.stdout_path.read_text()
    assert sacct_times(handle.job_id)[0] == "COMPLETED"


def test_gpus_are_requested_and_granted(slurm_cluster, tmp_path):
    exp = run_cmd(
        "echo gpus=$CUDA_VISIBLE_DEVICES",
        cluster=slurm_cluster,
        expname="gpu",
        output_dir=str(tmp_path),
        num_gpus=2,
        wait=True,
    )
    assert "gpus=0,1" in exp.final[0].stdout_path.read_text()


def test_failed_job_error_carries_its_stderr_tail(slurm_cluster, tmp_path):
    with pytest.raises(JobFailedError) as exc:
        run_cmd(
            "echo the-cause-is-here >&2; exit 4",
            cluster=slurm_cluster,
            expname="fails",
            output_dir=str(tmp_path),
            wait=True,
        )
    assert "status 4" in str(exc.value) and "the-cause-is-here" in str(exc.value)


def test_chain_stops_at_a_failed_middle_job(slurm_cluster, tmp_path):
    order = tmp_path / "order.txt"
    a = run_cmd(f"sleep 1; echo A >> {order}", cluster=slurm_cluster, expname="A", output_dir=str(tmp_path))
    b = run_cmd(
        f"echo B >> {order}; exit 1", cluster=slurm_cluster, expname="B", output_dir=str(tmp_path), run_after="A"
    )
    c = run_cmd(f"echo C >> {order}", cluster=slurm_cluster, expname="C", output_dir=str(tmp_path), run_after="B")
    assert wait_final(c.final[0]) == "CANCELLED"  # kill_invalid_depend: afterok on a failed job
    a_state, _, a_end = sacct_times(a.final[0].job_id)
    b_state, b_start, _ = sacct_times(b.final[0].job_id)
    assert (a_state, b_state) == ("COMPLETED", "FAILED")
    assert a_end <= b_start
    assert order.read_text().split() == ["A", "B"]
    with pytest.raises(
        JobFailedError, match=r"C \(job \d+\) ended CANCELLED without running: its upstream B .* FAILED"
    ):
        c.wait()


def test_afterany_chain_continues_past_a_failure(slurm_cluster, tmp_path):
    order = tmp_path / "order.txt"
    run_cmd(f"echo B >> {order}; exit 1", cluster=slurm_cluster, expname="B", output_dir=str(tmp_path))
    c = run_cmd(
        f"echo C >> {order}",
        cluster=slurm_cluster,
        expname="C",
        output_dir=str(tmp_path),
        run_after="B",
        dependency_type="afterany",
    )
    c.wait()
    assert order.read_text().split() == ["B", "C"]


def test_chaining_after_a_finished_failed_job_is_refused_at_submit(slurm_cluster, tmp_path):
    from assay.pipeline.executors import DependencyError

    b = run_cmd("exit 1", cluster=slurm_cluster, expname="B", output_dir=str(tmp_path))
    wait_final(b.final[0])
    with pytest.raises(DependencyError, match="ended FAILED"):
        run_cmd("echo C", cluster=slurm_cluster, expname="C", output_dir=str(tmp_path), run_after="B")


def test_several_jobs_at_once_all_complete(slurm_cluster, tmp_path):
    experiments = [
        run_cmd(f"sleep 2; echo job{i}", cluster=slurm_cluster, expname=f"many{i}", output_dir=str(tmp_path))
        for i in range(4)
    ]
    for i, exp in enumerate(experiments):
        exp.wait()
        assert f"job{i}" in exp.final[0].stdout_path.read_text()
    ids = [exp.final[0].job_id for exp in experiments]
    assert all(state == "COMPLETED" for state in slurm_states(ids).values())


def test_cancel_ends_a_running_job(slurm_cluster, tmp_path):
    exp = run_cmd("sleep 300", cluster=slurm_cluster, expname="cancel-me", output_dir=str(tmp_path))
    handle = exp.final[0]
    deadline = time.monotonic() + 60
    while handle.state() != "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.5)
    handle.cancel()
    assert wait_final(handle, timeout_s=60) == "CANCELLED"
    with pytest.raises(JobFailedError, match="CANCELLED"):
        exp.wait()


def test_dependent_jobs_run_as_a_sequential_chain(slurm_cluster, tmp_path):
    counter = tmp_path / "runs.txt"
    exp = run_cmd(
        f"echo $SLURM_JOB_ID >> {counter}",
        cluster=slurm_cluster,
        expname="copies",
        output_dir=str(tmp_path),
        dependent_jobs=2,
    )
    exp.wait()
    ids = [h.job_id for h in exp.handles]
    assert counter.read_text().split() == ids
    times = [sacct_times(i) for i in ids]
    assert all(state == "COMPLETED" for state, _, _ in times)
    assert times[0][2] <= times[1][1] and times[1][2] <= times[2][1]


def test_launcher_script_chains_three_jobs_in_order(slurm_cluster, tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "recipes" / "chain_three_jobs.py"),
            f"--cluster={slurm_cluster}",
            f"--output_dir={tmp_path}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    ids = [line.split("job ")[1].split()[0] for line in proc.stdout.splitlines() if line.startswith("Submitted")]
    assert len(ids) == 3
    registry.forget_in_memory()
    c = registry.lookup(slurm_cluster, "chain-C")[0]  # recorded by the launcher process
    assert c.job_id == ids[2]
    assert wait_final(c) == "COMPLETED"
    names = [line.split()[0] for line in (tmp_path / "order.txt").read_text().splitlines()]
    assert names == ["A", "B", "C"]
    times = [sacct_times(i) for i in ids]
    assert times[0][2] <= times[1][1] and times[1][2] <= times[2][1]


def test_cli_run_cmd_on_slurm(slurm_cluster, tmp_path):
    proc = subprocess.run(
        [
            "assay",
            "run_cmd",
            f"--cluster={slurm_cluster}",
            "--expname=hello",
            f"--output_dir={tmp_path}",
            "--wait",
            "echo hi",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    log_path = Path(proc.stdout.strip().splitlines()[-1].split("log ", 1)[1])
    assert "hi" in log_path.read_text().splitlines()


def test_wrapped_arguments_reach_a_slurm_job_exactly(slurm_cluster, tmp_path):
    from assay.pipeline import wrap_arguments

    out = tmp_path / "argv.json"
    echo = REPO / "tests" / "pipeline" / "echo_argv.py"
    run_cmd(
        f"{sys.executable} {echo} {out}",
        cluster=slurm_cluster,
        expname="argv",
        output_dir=str(tmp_path),
        ctx=wrap_arguments("++a='two words' ++b=[python] ++c=\"k=v\""),
        wait=True,
    )
    import json

    assert json.loads(out.read_text()) == ["++a=two words", "++b=[python]", "++c=k=v"]


def test_generate_pipeline_through_slurm_with_chunks(slurm_cluster, tmp_path, standin_url):
    import json

    from assay.pipeline import generate

    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps({"id": i, "question": f"q{i}"}) + "\n" for i in range(5)))
    exp = generate(
        input_file=str(inp),
        output_dir=str(tmp_path / "gen"),
        cluster=slurm_cluster,
        model="standin",
        server_type="openai",
        server_address=standin_url,
        num_chunks=2,
        num_random_seeds=2,
        wait=True,
    )
    assert len(exp.handles) == 4 and len(exp.final) == 2  # a job per chunk (both seeds of it at once), a merge per seed
    for seed in (0, 1):
        lines = [json.loads(x) for x in (tmp_path / "gen" / f"output-rs{seed}.jsonl").read_text().splitlines()]
        assert [x["generation"] for x in lines] == [f"q{i}"[::-1] for i in range(5)]


def test_eval_runs_as_a_chained_pipeline_on_slurm(slurm_cluster, tmp_path, monkeypatch, standin_url):
    import json

    from assay.pipeline.evaluate import eval as run_eval

    monkeypatch.setenv("ASSAY_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "e"
    [exp] = run_eval(
        benchmarks="smallmath:2",
        output_dir=str(out),
        model="standin",
        cluster=slurm_cluster,
        server_type="openai",
        server_address=standin_url,
        wait=True,
    )
    ids = [h.job_id for h in exp.handles]
    assert len(ids) == 2  # one generation job for both seeds (at once, one server), then grading + metrics
    times = [sacct_times(i) for i in ids]
    assert all(state == "COMPLETED" for state, _, _ in times)
    assert times[0][2] <= times[1][1]  # grading started after the generation ended
    assert json.loads((out / "eval-results" / "smallmath" / "metrics.json").read_text())


def test_a_submission_that_fails_midway_leaves_nothing_queued(slurm_cluster, tmp_path, capsys):
    from dataclasses import replace

    from assay.pipeline.cluster import load_cluster_config
    from assay.pipeline.executors import DependencyError
    from assay.pipeline.experiment import submit_experiment
    from assay.pipeline.job import Dependency, Job, JobHandle

    cluster = load_cluster_config(slurm_cluster)
    first = Job(name="partial", command=["sleep", "30"], output_dir=tmp_path)
    # job 2 cannot be submitted: its upstream is a job Slurm never knew, with no result file
    ghost = JobHandle("ghost", "999999998", "slurm", tmp_path / "ghost")
    second = Job(name="partial", command=["true"], output_dir=tmp_path, dependencies=[Dependency(ghost)])
    third = replace(first, dependencies=[Dependency(first)])
    with pytest.raises(DependencyError, match="no longer knows"):
        submit_experiment(cluster, "partial", [first, second, third])
    out = capsys.readouterr().out
    submitted = [line.split("job ")[1].split()[0] for line in out.splitlines() if line.startswith("Submitted")]
    assert len(submitted) == 1 and "cancelled" in out
    assert wait_final_state(submitted[0]) == "CANCELLED"


def wait_final_state(job_id: str, timeout_s: float = 60) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        state = slurm_states([job_id]).get(job_id, "UNKNOWN")
        if state not in ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "UNKNOWN") or time.monotonic() > deadline:
            return state
        time.sleep(0.5)


def test_an_upstream_slurm_forgot_is_judged_by_its_result_file(slurm_cluster, tmp_path):
    """A job id that sacct and squeue no longer list (purged accounting): its result file decides, and
    without one the submission stops with a message instead of an sbatch error halfway through."""
    import pickle

    from assay.core.config import ConfigError
    from assay.pipeline.executors import DependencyError
    from assay.pipeline.job import JobHandle

    gone = JobHandle("old-stage", "999999", "slurm", tmp_path)
    registry.record(slurm_cluster, "forgotten", [gone])
    with pytest.raises((DependencyError, ConfigError), match="Slurm no longer knows"):
        run_cmd(
            "true", cluster=slurm_cluster, expname="after-forgotten", output_dir=str(tmp_path), run_after="forgotten"
        )
    with open(tmp_path / "999999_0_result.pkl", "wb") as f:
        pickle.dump(("success", None), f)
    exp = run_cmd(
        "echo ran", cluster=slurm_cluster, expname="after-forgotten", output_dir=str(tmp_path), run_after="forgotten"
    )
    assert wait_final(exp.final[0]) == "COMPLETED"


def step_names(job_id: str) -> list[str]:
    """The names of a job's steps, as accounting recorded them."""
    out = subprocess.run(["sacct", "-n", "-P", "-o", "JobName", "-j", job_id], capture_output=True, text=True)
    return out.stdout.split()


def test_the_sandbox_runs_as_its_own_step_and_the_command_reaches_it(slurm_cluster, tmp_path):
    """The batch script starts the sandbox as a step of its own (token made on the node); the job's command, in
    the job's own step, runs code in it through $ASSAY_SANDBOX_URL and $ASSAY_SANDBOX_TOKEN."""
    client = (
        "from assay.sandbox.client import SandboxClient, configured_url; "
        "c = SandboxClient(configured_url(None)); print('sandbox says', c.execute('print(6 * 7)').stdout.strip())"
    )
    exp = run_cmd(
        f"{sys.executable} -c {shlex.quote(client)}",
        cluster=slurm_cluster,
        expname="with-sandbox",
        output_dir=str(tmp_path),
        with_sandbox=True,
        wait=True,
    )
    [handle] = exp.final
    assert "sandbox says 42" in handle.stdout_path.read_text()
    assert "assay_test_with-sandbox-sandbox" in step_names(handle.job_id)
    script = next(tmp_path.glob("logs/with-sandbox/*_submission.sh")).read_text()
    assert "ASSAY_SANDBOX_TOKEN=" in script and "od -An -N24" in script  # made on the node, never written down


def test_a_service_step_that_ends_early_fails_the_job_at_once_with_its_log(slurm_cluster, tmp_path):
    """An image this cluster cannot run (no container plugin here): the step ends at once, its exit status file
    tells the runner, and the job fails with the step's log instead of waiting for the startup timeout."""
    start = time.monotonic()
    with pytest.raises(JobFailedError, match=r"sandbox exited with status [1-9]\d* before it was healthy") as failed:
        run_cmd(
            "echo never",
            cluster=slurm_cluster,
            expname="bad-step",
            output_dir=str(tmp_path),
            with_sandbox=True,
            sandbox_container="no/such-image:1",
            wait=True,
        )
    assert time.monotonic() - start < 120
    assert "container-image" in str(failed.value)  # srun's own complaint, from the step's log
