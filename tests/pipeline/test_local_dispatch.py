"""run_cmd on the local cluster: real submitit LocalExecutor jobs, chains, copies and failures."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from assay.pipeline import JobFailedError, registry, run_cmd, wrap_arguments
from assay.pipeline.experiment import UnknownUpstreamError

ECHO_ARGV = Path(__file__).with_name("echo_argv.py")


def log_text(experiment) -> str:
    return "".join(h.stdout_path.read_text() for h in experiment.handles)


def test_run_cmd_runs_the_command_and_logs_its_output(tmp_path):
    exp = run_cmd("echo hi from $0", cluster="local", expname="hello", output_dir=str(tmp_path))
    handle = exp.final[0]
    assert handle.stdout_path.parent == tmp_path / "logs" / "hello"
    assert "hi from bash" in handle.stdout_path.read_text()
    assert handle.state() == "COMPLETED"


def test_failing_command_raises_with_the_tail_of_its_stderr(tmp_path):
    with pytest.raises(JobFailedError) as exc:
        run_cmd(
            "echo some output; echo the-real-reason >&2; exit 3",
            cluster="local",
            expname="bad",
            output_dir=str(tmp_path),
        )
    message = str(exc.value)
    assert "status 3" in message and "the-real-reason" in message


def test_wrapped_arguments_reach_the_command_exactly(tmp_path):
    out = tmp_path / "argv.json"
    overrides = "++a='two words' ++chat_template_kwargs.builtin_tools=[python] ++b=\"k=v\" ++c='it'\"'\"'s'"
    run_cmd(
        f"{sys.executable} {ECHO_ARGV} {out}",
        cluster="local",
        expname="argv",
        output_dir=str(tmp_path),
        ctx=wrap_arguments(overrides),
    )
    assert json.loads(out.read_text()) == [
        "++a=two words",
        "++chat_template_kwargs.builtin_tools=[python]",
        "++b=k=v",
        "++c=it's",
    ]


def test_chain_runs_in_order_and_stops_after_a_failure(tmp_path):
    order = tmp_path / "order.txt"
    a = run_cmd(f"sleep 1; echo A >> {order}", expname="A", output_dir=str(tmp_path), wait=False)
    b = run_cmd(f"echo B >> {order}; exit 1", expname="B", output_dir=str(tmp_path), run_after="A", wait=False)
    c = run_cmd(f"echo C >> {order}", expname="C", output_dir=str(tmp_path), run_after="B", wait=False)
    a.wait()
    with pytest.raises(JobFailedError):
        b.wait()
    with pytest.raises(JobFailedError, match="upstream job B .* failed"):
        c.wait()
    assert order.read_text().split() == ["A", "B"]


def test_afterany_runs_even_when_the_upstream_failed(tmp_path):
    order = tmp_path / "order.txt"
    run_cmd(f"echo B >> {order}; exit 1", expname="B", output_dir=str(tmp_path), wait=False)
    c = run_cmd(
        f"echo C >> {order}",
        expname="C",
        output_dir=str(tmp_path),
        run_after="B",
        dependency_type="afterany",
        wait=False,
    )
    c.wait()
    assert order.read_text().split() == ["B", "C"]


def test_dependent_jobs_run_one_after_another(tmp_path):
    counter = tmp_path / "runs.txt"
    exp = run_cmd(f"echo run >> {counter}", expname="long", output_dir=str(tmp_path), dependent_jobs=2)
    assert len(exp.handles) == 3 and exp.final == [exp.handles[-1]]
    assert counter.read_text().split() == ["run"] * 3
    # each copy waited for the previous one (afterany), which its log says
    assert "waiting for long" in exp.handles[2].stdout_path.read_text()


def test_run_after_an_unknown_expname_is_an_error(tmp_path):
    with pytest.raises(UnknownUpstreamError, match="no experiment named 'nope'"):
        run_cmd("echo x", expname="after-nothing", output_dir=str(tmp_path), run_after="nope")


def test_run_after_finds_an_experiment_submitted_by_an_earlier_launcher(tmp_path):
    order = tmp_path / "order.txt"
    run_cmd(f"echo first >> {order}", expname="earlier", output_dir=str(tmp_path))
    registry.forget_in_memory()  # as if a new launcher process started
    run_cmd(f"echo second >> {order}", expname="later", output_dir=str(tmp_path), run_after="earlier")
    assert order.read_text().split() == ["first", "second"]


def test_cli_run_cmd_prints_the_log_path_and_the_log_holds_the_output(tmp_path):
    proc = subprocess.run(
        ["assay", "run_cmd", "--cluster=local", "--expname=hello", f"--output_dir={tmp_path}", "echo hi"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    log_lines = [line for line in proc.stdout.splitlines() if "COMPLETED; log " in line]
    assert log_lines, proc.stdout
    log_path = Path(log_lines[-1].split("log ", 1)[1])
    assert "hi" in log_path.read_text().splitlines()


def test_cli_reports_a_failed_job_with_its_stderr_and_exit_status_1(tmp_path):
    proc = subprocess.run(
        [
            "assay",
            "run_cmd",
            "--cluster=local",
            "--expname=oops",
            f"--output_dir={tmp_path}",
            "python -c 'import nonexistent_module_xyz'",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "ModuleNotFoundError" in proc.stderr and "nonexistent_module_xyz" in proc.stderr


def test_a_job_depending_on_earlier_jobs_of_its_experiment_runs_after_all_of_them(tmp_path):
    from assay.pipeline.cluster import load_cluster_config
    from assay.pipeline.experiment import submit_experiment
    from assay.pipeline.job import Dependency, Job

    order = tmp_path / "order.txt"
    chunks = [
        Job(name="gen", command=["bash", "-c", f"sleep {s}; echo chunk{i} >> {order}"], output_dir=tmp_path)
        for i, s in enumerate([1, 0])
    ]
    merge = Job(
        name="gen",
        command=["bash", "-c", f"echo merge >> {order}"],
        output_dir=tmp_path,
        dependencies=[Dependency(c) for c in chunks],
        follow_up_copies=False,
    )
    exp = submit_experiment(load_cluster_config("local"), "gen", [*chunks, merge], dependent_jobs=1)
    exp.wait()
    assert len(exp.handles) == 5  # two chunks with one copy each, one merge without copies
    assert exp.final == [exp.handles[-1]]
    assert order.read_text().split()[-1] == "merge"
    assert sorted(order.read_text().split()) == ["chunk0", "chunk0", "chunk1", "chunk1", "merge"]


def test_next_commands_run_in_the_same_job_in_order(tmp_path):
    from assay.pipeline.cluster import load_cluster_config
    from assay.pipeline.experiment import submit_experiment
    from assay.pipeline.job import Job

    order = tmp_path / "order.txt"
    job = Job(
        name="seq",
        command=["bash", "-c", f"echo one >> {order}"],
        output_dir=tmp_path,
        next_commands=[
            ["bash", "-c", f"echo two >> {order}"],
            ["bash", "-c", "exit 5"],
            ["bash", "-c", f"echo never >> {order}"],
        ],
    )
    exp = submit_experiment(load_cluster_config("local"), "seq", [job])
    with pytest.raises(JobFailedError, match="status 5"):
        exp.wait()
    assert order.read_text().split() == ["one", "two"]


def test_cancelling_a_local_job_stops_its_command_and_services(tmp_path):
    import time

    from assay.pipeline.cluster import load_cluster_config
    from assay.pipeline.experiment import submit_experiment
    from assay.pipeline.job import Job
    from assay.pipeline.services import ServiceSpec

    pidfile, service_pidfile = tmp_path / "cmd.pid", tmp_path / "svc.pid"
    service = ServiceSpec(
        name="web",
        command=[
            "bash",
            "-c",
            f"echo $$ > {service_pidfile}; exec {sys.executable} -m http.server {{port}} --bind 127.0.0.1",
        ],
        health_url="http://127.0.0.1:{port}/",
    )
    job = Job(
        name="long",
        command=["bash", "-c", f"echo $$ > {pidfile}; exec sleep 300"],
        output_dir=tmp_path,
        services=[service],
    )
    exp = submit_experiment(load_cluster_config("local"), "long", [job])
    handle = exp.final[0]
    deadline = time.monotonic() + 60
    while not pidfile.exists():
        assert time.monotonic() < deadline
        time.sleep(0.2)
    handle.cancel()
    with pytest.raises(JobFailedError):
        exp.wait(timeout_s=60)
    for path in (pidfile, service_pidfile):
        assert_process_ends(int(path.read_text()), path.name)


def assert_process_ends(pid: int, what: str, within_s: float = 15) -> None:
    import os
    import time

    deadline = time.monotonic() + within_s
    while os.path.exists(f"/proc/{pid}") and open(f"/proc/{pid}/stat").read().split()[2] != "Z":
        assert time.monotonic() < deadline, f"{what} process {pid} still alive"
        time.sleep(0.2)


def start_long_launcher(tmp_path, ignored=()):
    """`assay run_cmd` of a 300 s command, started with the signals `ignored` (as `nohup` or a script's `&` do)."""
    import signal
    import time

    def ignore():
        # from a known start: the test runner itself may run with signals ignored (under nohup, or started by `&`)
        for name in ("SIGINT", "SIGTERM", "SIGHUP"):
            signal.signal(getattr(signal, name), signal.SIG_DFL)
        for name in ignored:
            signal.signal(getattr(signal, name), signal.SIG_IGN)

    pidfile = tmp_path / "cmd.pid"
    launcher = subprocess.Popen(
        [
            "assay",
            "run_cmd",
            "--cluster=local",
            "--expname=long",
            f"--output_dir={tmp_path}",
            f"echo $$ > {pidfile}; exec sleep 300",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=ignore,
    )
    deadline = time.monotonic() + 60
    while not pidfile.exists():
        assert launcher.poll() is None and time.monotonic() < deadline, launcher.communicate()[0]
        time.sleep(0.2)
    return launcher, pidfile


@pytest.mark.parametrize(
    "signame, ignored",
    [
        ("SIGINT", ()),
        ("SIGTERM", ()),
        ("SIGHUP", ()),
        # a launcher a script started in the background (`assay eval ... &`) ignores SIGINT, and so would its jobs
        ("SIGTERM", ("SIGINT",)),
    ],
)
def test_a_stopped_launcher_stops_the_local_jobs_it_waits_for(tmp_path, signame, ignored):
    """Ctrl-C, kill, or a closed terminal: the launcher's local jobs must not run on, orphaned."""
    import signal

    launcher, pidfile = start_long_launcher(tmp_path, ignored)
    launcher.send_signal(getattr(signal, signame))
    out, _ = launcher.communicate(timeout=60)
    assert launcher.returncode == 130, out
    assert "interrupted: stopped 1 local job(s) of long" in out and "Traceback" not in out, out
    assert_process_ends(int(pidfile.read_text()), "the job's command")


def test_a_launcher_under_nohup_survives_a_closed_terminal(tmp_path):
    """`nohup` ignores SIGHUP: the launcher and its jobs keep running; a later kill still stops both."""
    import signal
    import time

    launcher, pidfile = start_long_launcher(tmp_path, ("SIGHUP",))
    launcher.send_signal(signal.SIGHUP)
    time.sleep(2)
    pid = int(pidfile.read_text())
    assert launcher.poll() is None and open(f"/proc/{pid}/stat").read().split()[2] != "Z"
    launcher.send_signal(signal.SIGTERM)
    out, _ = launcher.communicate(timeout=60)
    assert "interrupted: stopped 1 local job(s) of long" in out, out
    assert_process_ends(pid, "the job's command")
