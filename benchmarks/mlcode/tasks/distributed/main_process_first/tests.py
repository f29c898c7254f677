import os as _os
import tempfile as _tempfile
import time as _time


def test_rank_zero_prepares_first_and_all_wait_at_exit():
    with _tempfile.TemporaryDirectory() as tmp:
        cache = _os.path.join(tmp, "cache.txt")

        def body(rank, world_size):
            with main_process_first():
                if rank == 0:
                    _time.sleep(0.5)
                    with open(cache, "w") as f:
                        f.write("ready")
                    seen = "writer"
                else:
                    with open(cache) as f:  # raises if rank 0 has not written it yet
                        seen = f.read()
                    _time.sleep(0.3)
                    with open(_os.path.join(tmp, f"done_{rank}"), "w") as f:
                        f.write("x")
            others_done = all(_os.path.exists(_os.path.join(tmp, f"done_{r}")) for r in range(1, world_size))
            return seen, others_done

        results = _mlc_run_ranks(body)
    assert results[0] == ("writer", True)
    assert results[1] == ("ready", True)


def test_usable_twice_in_a_row():
    def body(rank, world_size):
        order = []
        for i in range(2):
            with main_process_first():
                order.append(i)
        return order

    assert _mlc_run_ranks(body) == [[0, 1], [0, 1]]
