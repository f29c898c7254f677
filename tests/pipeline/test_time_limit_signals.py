"""The time-limit warning (SIGUSR2, what Slurm sends `signal_delay_s` before the limit) inside a job's runner.

A real runner process (pipeline/job_runner.py's `_run_command`) runs a real child: the warning sent to the
runner reaches the child's process group, a child that handles it stops cleanly, and a child that does not
handle it (a server, a user's script) is not killed by it, even when Slurm signals it directly.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

RUNNER = textwrap.dedent(
    """
    import json, os, sys
    from assay.pipeline.job_runner import _run_command, CommandFailedError
    env = {**os.environ, **json.loads(os.environ.get("EXTRA_ENV", "{}"))} if os.environ.get("EXTRA_ENV") else None
    try:
        _run_command("t", sys.argv[1:], env, None, None, None)
        print("RESULT ok", flush=True)
    except CommandFailedError as exc:
        print("RESULT failed " + str(exc).split(" after ")[0], flush=True)
    """
)


def start_runner(tmp_path: Path, child: str, env: dict | None = None) -> subprocess.Popen:
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(child))
    return subprocess.Popen(
        [sys.executable, "-c", RUNNER, sys.executable, str(script)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "EXTRA_ENV": json.dumps(env)} if env else None,
    )


def wait_for(path: Path, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_the_warning_reaches_a_command_that_handles_it(tmp_path):
    marker = tmp_path / "warned"
    ready = tmp_path / "ready"
    runner = start_runner(
        tmp_path,
        f"""
        import signal, sys, time, pathlib
        def save_and_stop(signum, frame):
            pathlib.Path({str(marker)!r}).write_text("saved")
            sys.exit(3)
        signal.signal(signal.SIGUSR2, save_and_stop)
        pathlib.Path({str(ready)!r}).write_text("")
        time.sleep(60)
        """,
    )
    wait_for(ready)
    runner.send_signal(signal.SIGUSR2)  # Slurm, or submitit, warning the job
    out, _ = runner.communicate(timeout=30)
    assert marker.read_text() == "saved"
    assert "RESULT failed t: command exited with status 3" in out  # non-zero: afterok waits, a copy resumes


def test_a_command_that_does_not_handle_it_survives_the_warning(tmp_path):
    ready = tmp_path / "ready"
    runner = start_runner(
        tmp_path,
        f"""
        import os, pathlib, time
        pathlib.Path({str(ready)!r}).write_text(str(os.getpid()))
        time.sleep(2)
        """,
    )
    wait_for(ready)
    time.sleep(0.2)
    os.kill(int(ready.read_text()), signal.SIGUSR2)  # Slurm signals every process of the step
    runner.send_signal(signal.SIGUSR2)
    out, _ = runner.communicate(timeout=30)
    assert "RESULT ok" in out


def test_a_warning_before_the_command_listens_is_kept_for_it(tmp_path):
    """A stage still loading its model has no handler yet (the warning is ignored then): the runner also creates
    the time-limit file, which the stage finds once it looks (training: after every step)."""
    flag, ready, seen = tmp_path / "1_time_limit", tmp_path / "ready", tmp_path / "seen"
    runner = start_runner(
        tmp_path,
        f"""
        import os, pathlib, time
        pathlib.Path({str(ready)!r}).write_text("")
        time.sleep(1.5)  # "loading the model": the warning comes now, and is ignored
        deadline = time.monotonic() + 20
        while not os.path.exists(os.environ["ASSAY_TIME_LIMIT_FILE"]) and time.monotonic() < deadline:
            time.sleep(0.05)
        pathlib.Path({str(seen)!r}).write_text(str(os.path.exists(os.environ["ASSAY_TIME_LIMIT_FILE"])))
        """,
        env={"ASSAY_TIME_LIMIT_FILE": str(flag)},
    )
    wait_for(ready)
    runner.send_signal(signal.SIGUSR2)
    out, _ = runner.communicate(timeout=30)
    assert "RESULT ok" in out and seen.read_text() == "True" and flag.exists()


def test_training_stops_after_the_step_once_the_time_limit_file_exists(tmp_path, monkeypatch, training_packages):
    """The trainer callback itself, with transformers' own state objects: no signal, only the file."""
    from transformers import TrainerControl, TrainerState, TrainingArguments

    from assay.training.callbacks import StopOnSignal

    flag = tmp_path / "7_time_limit"
    monkeypatch.setenv("ASSAY_TIME_LIMIT_FILE", str(flag))
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    state, control = TrainerState(), TrainerControl()
    stopper = StopOnSignal()
    try:
        state.global_step = 4
        stopper.on_step_end(args, state, control)
        assert not control.should_training_stop and stopper.stopped_at is None
        flag.touch()
        state.global_step = 5
        stopper.on_step_end(args, state, control)
        assert control.should_save and control.should_training_stop and stopper.stopped_at == 5
    finally:
        stopper.close()
