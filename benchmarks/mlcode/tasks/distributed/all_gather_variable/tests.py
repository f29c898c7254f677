import torch as _torch


def test_float_lengths_differ():
    def body(rank, world_size):
        t = _torch.arange(3 + 2 * rank, dtype=_torch.float32) + 10 * rank
        out = all_gather_variable(t)
        return [(str(x.dtype), x.tolist()) for x in out]

    expected = [("torch.float32", [0.0, 1.0, 2.0]), ("torch.float32", [10.0, 11.0, 12.0, 13.0, 14.0])]
    assert _mlc_run_ranks(body) == [expected, expected]


def test_int64_with_an_empty_rank():
    def body(rank, world_size):
        t = _torch.tensor([7, -3, 2**40], dtype=_torch.int64) if rank == 0 else _torch.zeros(0, dtype=_torch.int64)
        out = all_gather_variable(t)
        return [(str(x.dtype), x.tolist()) for x in out]

    expected = [("torch.int64", [7, -3, 2**40]), ("torch.int64", [])]
    assert _mlc_run_ranks(body) == [expected, expected]
