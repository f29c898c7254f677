import torch as _torch
import torch.distributed as _dist_mod

_SHAPES = [(3,), (1, 3), (5,), (1,), (2, 5), (2,)]


def _count_all_reduce_calls(fn):
    calls = []
    original = _dist_mod.all_reduce

    def counting(tensor, *args, **kwargs):
        calls.append(tensor.numel())
        return original(tensor, *args, **kwargs)

    _dist_mod.all_reduce = counting
    try:
        return fn(), calls
    finally:
        _dist_mod.all_reduce = original


def test_prompt_example_and_results():
    def body(rank, world_size):
        g = _torch.Generator().manual_seed(rank)
        tensors = [_torch.randn(s, generator=g) for s in _SHAPES]
        ids = [id(t) for t in tensors]
        n, calls = _count_all_reduce_calls(lambda: bucketed_all_reduce(tensors, 6))
        assert [id(t) for t in tensors] == ids
        return n, calls, [t.tolist() for t in tensors], [tuple(t.shape) for t in tensors]

    expected = []
    for s in _SHAPES:
        expected.append(None)
    g0, g1 = _torch.Generator().manual_seed(0), _torch.Generator().manual_seed(1)
    a = [_torch.randn(s, generator=g0) for s in _SHAPES]
    b = [_torch.randn(s, generator=g1) for s in _SHAPES]
    for n, calls, values, shapes in _mlc_run_ranks(body):
        assert n == 4
        assert calls == [6, 6, 10, 2]
        assert shapes == _SHAPES
        for got, x, y in zip(values, a, b):
            _torch.testing.assert_close(_torch.tensor(got), x + y)


def test_bucket_counts():
    def body(rank, world_size):
        counts = []
        for sizes, cap in [([4, 4, 4], 100), ([4, 4, 4], 4), ([1, 7, 1, 1], 2), ([9], 3)]:
            tensors = [_torch.full((k,), float(rank + 1)) for k in sizes]
            counts.append(bucketed_all_reduce(tensors, cap))
            assert all((t == 3.0).all() for t in tensors)
        return counts

    assert _mlc_run_ranks(body) == [[1, 3, 3, 1]] * 2
