"""`max_parallel_jobs` on a local cluster: real submitit local jobs that wait for a free slot.

The slots are `flock`s on files, so the tests also show that a failed job and a SIGKILLed holder
give their slot back.
"""

import os
import signal
import subprocess
import sys
import time

import pytest

from assay.pipeline import JobFailedError, run_cmd
from assay.pipeline.cluster import ClusterConfigError, load_cluster_config
from assay.pipeline.local_slots import LocalSlots, hold_slot


def limited_cluster(tmp_path, limit=1):
    path = tmp_path / "laptop.yaml"
    path.write_text(f"executor: local\nmax_parallel_jobs: {limit}\n")
    return str(path)


def test_jobs_beyond_the_limit_wait_for_a_free_slot(tmp_path):
    cluster = limited_cluster(tmp_path)
    events = tmp_path / "events.txt"
    experiments = [
        run_cmd(
            f"echo start {name} >> {events}; sleep 2; echo end {name} >> {events}",
            cluster=cluster,
            expname=name,
            output_dir=str(tmp_path),
            wait=False,
        )
        for name in ("a", "b", "c")
    ]
    for exp in experiments:
        exp.wait()
    lines = events.read_text().splitlines()
    # one at a time: every start is followed by its own end before the next start
    assert len(lines) == 6
    for start, end in zip(lines[::2], lines[1::2]):
        assert start.startswith("start ") and end == "end " + start.split()[1]
    logs = "".join(exp.final[0].stdout_path.read_text() for exp in experiments)
    assert "waiting for a free local slot (max_parallel_jobs=1" in logs


def test_a_failed_job_gives_its_slot_back(tmp_path):
    cluster = limited_cluster(tmp_path)
    bad = run_cmd("sleep 1; exit 3", cluster=cluster, expname="bad", output_dir=str(tmp_path), wait=False)
    good = run_cmd("echo after-the-failure", cluster=cluster, expname="good", output_dir=str(tmp_path), wait=False)
    with pytest.raises(JobFailedError):
        bad.wait()
    good.wait()
    assert "after-the-failure" in good.final[0].stdout_path.read_text()


def test_a_killed_holder_frees_its_slot(tmp_path):
    slots = LocalSlots(str(tmp_path / "slots"), 1)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from assay.pipeline.local_slots import LocalSlots, hold_slot\n"
            f"with hold_slot(LocalSlots({slots.folder!r}, 1), 'holder'):\n"
            "    print('held', flush=True)\n"
            "    time.sleep(600)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        assert "holder" in (tmp_path / "slots" / "slot_0.lock").read_text()
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
        start = time.monotonic()
        with hold_slot(slots, "next", poll_s=0.1) as index:
            assert index == 0
        assert time.monotonic() - start < 30
    finally:
        holder.kill()
        holder.wait()


def test_the_dry_run_names_the_slot_limit(tmp_path, capsys):
    run_cmd("echo x", cluster=limited_cluster(tmp_path, 2), expname="dry", output_dir=str(tmp_path), dry_run=True)
    assert "then a free slot of 2 in" in capsys.readouterr().out


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "executor: slurm\nmax_parallel_jobs: 2\n",
            "max_parallel_jobs is for jobs that share this machine; slurm schedules its own",
        ),
        ("executor: local\nmax_parallel_jobs: 0\n", "at least 1"),
        ("executor: local\nmax_parallel_jobs: two\n", "field 'max_parallel_jobs' expects int"),
    ],
)
def test_a_bad_limit_is_a_config_error(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ClusterConfigError, match=message):
        load_cluster_config(path)
