"""Stopping the server, gracefully or not, leaves no kernel processes, cgroups or folders behind."""

from __future__ import annotations

import os
import signal
import tempfile
import time


def _wait_gone(pids: list[int]) -> list[int]:
    for _ in range(200):
        alive = [p for p in pids if _alive(p)]
        if not alive:
            return []
        time.sleep(0.05)
    return alive


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _cgroup_dirs(server_pid: int) -> list[str]:
    found = []
    for root, dirs, _ in os.walk("/sys/fs/cgroup"):
        found += [os.path.join(root, d) for d in dirs if d == f"assay-sandbox-{server_pid}"]
        if root.count("/") > 6:
            dirs[:] = []
    return found


def _folders(server_pid: int) -> list[str]:
    return [n for n in os.listdir(tempfile.gettempdir()) if n.startswith(f"assay-sbx-{server_pid}-")]


def test_sigterm_stops_every_kernel_and_removes_cgroups(server_factory):
    srv = server_factory("sigterm", "--pool-size", "2")
    with srv.client() as c:
        c.execute("import subprocess\nsubprocess.Popen(['sleep', '300'])", session_id="s")
    kernels = srv.kernel_pids()
    assert len(kernels) >= 2
    srv.stop(signal.SIGTERM)
    assert _wait_gone(kernels) == []
    assert _cgroup_dirs(srv.proc.pid) == []
    assert _folders(srv.proc.pid) == []


def test_kernels_die_with_a_killed_server_and_the_next_server_clears_its_leftovers(server_factory):
    srv = server_factory("sigkill", "--pool-size", "2")
    with srv.client() as c:
        c.execute("x = 1", session_id="s")
    kernels = srv.kernel_pids()
    assert len(kernels) >= 2
    srv.stop(signal.SIGKILL)
    assert _wait_gone(kernels) == []
    server_factory("after-sigkill", "--pool-size", "0").stop()
    assert _cgroup_dirs(srv.proc.pid) == []
    assert _folders(srv.proc.pid) == []
