import torch as _torch


def test_writes_at_per_row_offsets_in_place():
    g = _torch.Generator().manual_seed(0)
    cache = _torch.randn(3, 2, 8, 4, generator=g)
    before = cache.clone()
    new = _torch.randn(3, 2, 3, 4, generator=g)
    start = _torch.tensor([0, 5, 2])
    out = write_kv_cache(cache, new, start)
    assert out is cache
    expected = before.clone()
    for b in range(3):
        for i in range(3):
            expected[b, :, int(start[b]) + i] = new[b, :, i]
    assert _torch.equal(cache, expected)


def test_single_token_step():
    cache = _torch.zeros(2, 1, 4, 1)
    write_kv_cache(cache, _torch.ones(2, 1, 1, 1), _torch.tensor([3, 1]))
    assert cache[:, 0, :, 0].tolist() == [[0, 0, 0, 1], [0, 1, 0, 0]]


def test_out_of_bounds_raises_without_writing():
    cache = _torch.zeros(2, 1, 4, 2)
    for start in (_torch.tensor([0, 3]), _torch.tensor([-1, 0])):
        try:
            write_kv_cache(cache, _torch.ones(2, 1, 2, 2), start)
        except ValueError:
            assert cache.abs().sum() == 0
        else:
            raise AssertionError("expected ValueError")
