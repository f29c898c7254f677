import torch as _torch


def test_chunks_of_the_sum():
    def body(rank, world_size):
        t = _torch.arange(6, dtype=_torch.float32) * (rank + 1)
        before = t.clone()
        out = reduce_scatter_sum(t)
        return out.tolist(), str(out.dtype), _torch.equal(t, before)

    r0, r1 = _mlc_run_ranks(body)
    assert r0 == ([0.0, 3.0, 6.0], "torch.float32", True)
    assert r1 == ([9.0, 12.0, 15.0], "torch.float32", True)


def test_int64():
    def body(rank, world_size):
        return reduce_scatter_sum(_torch.tensor([1, 2, 3, 4], dtype=_torch.int64) * (10 ** rank)).tolist()

    assert _mlc_run_ranks(body) == [[11, 22], [33, 44]]
