"""The time-limit warning (SIGUSR2, what Slurm sends `signal_delay_s` before the limit) inside a job's runner.

A real runner process (pipeline/job_runner.py's `_run_command`) runs a real child: the warning sent to the
runner reaches the child's process group, a child that handles it stops cleanly, and a child that does not
handle it (a server, a user's script) is not killed by it, even when Slurm signals it directly.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

RUNNER = textwrap.dedent(
    """
    import sys
    from assay.pipeline.job_runner import _run_command, CommandFailedError
    try:
        _run_command("t", sys.argv[1:], None, None, None, None)
        print("RESULT ok", flush=True)
    except CommandFailedError as exc:
        print("RESULT failed " + str(exc).split(" after ")[0], flush=True)
    """
)


def start_runner(tmp_path: Path, child: str) -> subprocess.Popen:
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(child))
    return subprocess.Popen(
        [sys.executable, "-c", RUNNER, sys.executable, str(script)], stdout=subprocess.PIPE, text=True
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
