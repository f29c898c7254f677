# mlcode harness "performance": prepended by the builder to the tests of the tasks that name it.
# _mlc_speedup(fast, slow, args) returns best-of-n time of slow(*args) / best-of-n time of fast(*args),
# both measured here, in the same process, after one warm-up call each.
import time as _time


def _mlc_best_time(fn, args, repeats):
    best = float("inf")
    for _ in range(repeats):
        start = _time.perf_counter()
        fn(*args)
        best = min(best, _time.perf_counter() - start)
    return best


def _mlc_speedup(fast, slow, args, fast_repeats=7, slow_repeats=3):
    fast(*args)
    slow(*args)
    return _mlc_best_time(slow, args, slow_repeats) / max(_mlc_best_time(fast, args, fast_repeats), 1e-9)
