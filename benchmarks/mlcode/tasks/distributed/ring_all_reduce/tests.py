import torch as _torch
import torch.distributed as _dist_mod

_COLLECTIVES = ("all_reduce", "reduce", "all_gather", "broadcast", "reduce_scatter")


def _forbid_collectives():
    def forbidden(*args, **kwargs):
        raise AssertionError("collectives are not allowed in ring_all_reduce")

    for name in _COLLECTIVES:
        setattr(_dist_mod, name, forbidden)


def test_sum_in_place():
    def body(rank, world_size):
        _forbid_collectives()
        t = _torch.arange(6, dtype=_torch.float32) + 100 * rank
        out = ring_all_reduce(t)
        return out is t, t.tolist()

    for same, values in _mlc_run_ranks(body):
        assert same
        assert values == [100.0, 102.0, 104.0, 106.0, 108.0, 110.0]


def test_uneven_length_and_repeated_calls():
    def body(rank, world_size):
        _forbid_collectives()
        g = _torch.Generator().manual_seed(rank)
        results = []
        for n in (7, 2, 33):
            t = _torch.randn(n, generator=g)
            ring_all_reduce(t)
            results.append(t.tolist())
        return results

    g0, g1 = _torch.Generator().manual_seed(0), _torch.Generator().manual_seed(1)
    expected = []
    for n in (7, 2, 33):
        expected.append(_torch.randn(n, generator=g0) + _torch.randn(n, generator=g1))
    for results in _mlc_run_ranks(body):
        for got, want in zip(results, expected):
            _torch.testing.assert_close(_torch.tensor(got), want)
