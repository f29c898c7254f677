import torch as _torch


def _data():
    g = _torch.Generator().manual_seed(0)
    return [_torch.randn(5, 3, generator=g) * 2 + 1, _torch.randn(9, 3, generator=g) - 3]


def test_matches_statistics_of_the_concatenation():
    def body(rank, world_size):
        mean, var = global_batch_stats(_data()[rank])
        return str(mean.dtype), mean.tolist(), var.tolist()

    full = _torch.cat(_data()).double()
    results = _mlc_run_ranks(body)
    assert results[0] == results[1]
    dtype, mean, var = results[0]
    assert dtype == "torch.float32"
    _torch.testing.assert_close(_torch.tensor(mean, dtype=_torch.float64), full.mean(0), rtol=1e-5, atol=1e-5)
    _torch.testing.assert_close(_torch.tensor(var, dtype=_torch.float64), full.var(0, unbiased=False), rtol=1e-5, atol=1e-5)


def test_empty_rank_and_large_offset():
    def body(rank, world_size):
        g = _torch.Generator().manual_seed(1)
        x = (1e4 + _torch.randn(4000, 2, generator=g)).float()
        mine = x if rank == 1 else x[:0]
        mean, var = global_batch_stats(mine)
        return mean.tolist(), var.tolist(), x.double().mean(0).tolist(), x.double().var(0, unbiased=False).tolist()

    for mean, var, want_mean, want_var in _mlc_run_ranks(body):
        assert all(abs(a - b) < 1e-2 for a, b in zip(mean, want_mean))
        assert all(abs(a - b) / b < 1e-3 for a, b in zip(var, want_var)), (var, want_var)
