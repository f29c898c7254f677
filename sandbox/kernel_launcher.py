"""Start one IPython kernel with a session's limits applied to itself first.

The server runs this file as a script (`python kernel_launcher.py [limits] -- [ipykernel args]`)
in a new process session, so the kernel is a fresh interpreter that never shared memory with the
server. Limits are set here rather than in a `preexec_fn`, which is unsafe in a threaded parent.
It imports nothing from assay, so the kernels may run under another interpreter (`--python`).

What it does, in order:
- dies with its parent (PR_SET_PDEATHSIG), so a killed server leaves no kernels behind;
- joins the cgroups it is given (every process the session starts inherits them);
- makes itself the first choice of the system OOM killer, so the server survives memory pressure;
- sets RLIMIT_AS, RLIMIT_CPU and RLIMIT_CORE=0 (no core files from crashing user code);
- starts ipykernel.

The kernel's own stdout/stderr are /dev/null: ipykernel copies everything user code writes to
file descriptors 1 and 2 there too, and a file would grow without bound. A failure to start is
written to the `--log` file instead.
"""

import argparse
import os
import resource
import signal
import sys


def _die_with_parent(parent_pid: int) -> None:
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:  # the parent died before the prctl took effect
        os._exit(1)


def _join_cgroups(dirs: list[str]) -> None:
    for path in dirs:
        with open(os.path.join(path, "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))


def _set_rlimits(address_space_mb: int, cpu_seconds: int) -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if address_space_mb > 0:
        limit = address_space_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    if cpu_seconds > 0:
        # The soft limit sends SIGXCPU (which ends Python); the hard one, a little later, SIGKILL.
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))


def main(argv: list[str]) -> None:
    if "--" not in argv:
        sys.exit("usage: kernel_launcher.py [options] -- <ipykernel arguments>")
    split = argv.index("--")
    parser = argparse.ArgumentParser()
    parser.add_argument("--parent-pid", type=int, required=True)
    parser.add_argument("--cgroup", action="append", default=[])
    parser.add_argument("--address-space-mb", type=int, default=0)
    parser.add_argument("--cpu-seconds", type=int, default=0)
    parser.add_argument("--oom-score-adj", type=int, default=1000)
    parser.add_argument("--log", default=None)
    args = parser.parse_args(argv[:split])

    # A script's own folder is put first on sys.path; user code must not import our modules.
    if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
        del sys.path[0]

    try:
        _die_with_parent(args.parent_pid)
        _join_cgroups(args.cgroup)
        try:
            with open("/proc/self/oom_score_adj", "w") as f:
                f.write(str(args.oom_score_adj))
        except OSError:
            pass
        _set_rlimits(args.address_space_mb, args.cpu_seconds)

        from ipykernel.kernelapp import IPKernelApp

        app = IPKernelApp.instance()
        app.initialize(argv[split + 1 :])
    except BaseException:
        if args.log:
            import traceback

            with open(args.log, "a") as f:
                traceback.print_exc(file=f)
        raise
    app.start()


if __name__ == "__main__":
    main(sys.argv[1:])
