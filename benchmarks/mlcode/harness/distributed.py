# mlcode harness "distributed": prepended by the builder to the tests of the tasks that name it.
# _mlc_run_ranks(body) forks 2 processes, joins them in a gloo process group on 127.0.0.1, runs
# body(rank, world_size) in each and returns their return values (plain Python values), by rank.
# Fork, not spawn: spawn pickles the target, and functions defined in an IPython kernel's __main__
# cannot be pickled. Results travel through one pipe per rank (no semaphores, no /dev/shm needed).
# A failure, a crash or a hang in any rank becomes an AssertionError in the caller.
# Joining the group is infrastructure, not the answer: gloo's connect can fail under load ("Connection closed
# by peer"), so when every failure is in joining, the ranks are started again on a fresh port (at most 3 tries).
import datetime as _datetime
import multiprocessing as _multiprocessing
import multiprocessing.connection as _mp_connection
import os as _os
import socket as _socket
import time as _time
import traceback as _traceback

import torch as _torch
import torch.distributed as _dist

_MLC_WORLD_SIZE = 2
_MLC_RANK_TIMEOUT_S = 15.0
_MLC_JOIN_TRIES = 3
_MLC_JOIN_FAILED = "could not join the process group:\n"


def _mlc_free_port():
    with _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _mlc_rank_main(rank, world_size, port, body, writer):
    try:
        _os.environ["GLOO_SOCKET_IFNAME"] = "lo"
        _torch.set_num_threads(1)
        try:
            _dist.init_process_group(
                "gloo",
                init_method=f"tcp://127.0.0.1:{port}",
                rank=rank,
                world_size=world_size,
                timeout=_datetime.timedelta(seconds=_MLC_RANK_TIMEOUT_S),
            )
        except Exception:
            writer.send((_MLC_JOIN_FAILED + _traceback.format_exc(), None))
            return
        try:
            value = body(rank, world_size)
        finally:
            _dist.destroy_process_group()
        writer.send((None, value))
    except BaseException:
        writer.send((_traceback.format_exc(), None))
    finally:
        writer.close()


def _mlc_run_ranks(body, world_size=_MLC_WORLD_SIZE, timeout=_MLC_RANK_TIMEOUT_S + 5.0):
    for _ in range(_MLC_JOIN_TRIES):
        values, errors = _mlc_run_ranks_once(body, world_size, timeout)
        only_joining = errors and all(error.startswith(_MLC_JOIN_FAILED) for error in errors.values())
        if not only_joining:
            break
    assert not errors, "\n".join(f"rank {rank} failed:\n{error}" for rank, error in sorted(errors.items()))
    return [values[rank] for rank in range(world_size)]


def _mlc_run_ranks_once(body, world_size, timeout):
    ctx = _multiprocessing.get_context("fork")
    port = _mlc_free_port()
    procs, pending = [], {}
    for rank in range(world_size):
        reader, writer = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_mlc_rank_main, args=(rank, world_size, port, body, writer), daemon=True)
        proc.start()
        writer.close()
        procs.append(proc)
        pending[reader] = rank
    values, errors = {}, {}
    deadline = _time.monotonic() + timeout
    try:
        while pending:
            ready = _mp_connection.wait(list(pending), timeout=max(0.0, deadline - _time.monotonic()))
            if not ready:
                for rank in pending.values():
                    errors[rank] = f"did not finish within {timeout:.0f} s"
                break
            for reader in ready:
                rank = pending.pop(reader)
                try:
                    error, value = reader.recv()
                except EOFError:
                    procs[rank].join(timeout=5)
                    error, value = f"exited without a result (exit code {procs[rank].exitcode})", None
                if error is None:
                    values[rank] = value
                else:
                    errors[rank] = error
    finally:
        for proc in procs:
            proc.join(timeout=0 if pending else 5)  # after a timeout, do not wait any longer
            if proc.is_alive():
                proc.kill()
                proc.join()
        for reader in pending:
            reader.close()
    return values, errors
