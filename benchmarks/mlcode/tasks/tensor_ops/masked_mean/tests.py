import torch as _torch


def _expected(x, mask, dim):
    x = x.movedim(dim, -1)
    mask = mask.movedim(dim, -1)
    out = _torch.zeros(x.shape[:-1], dtype=x.dtype)
    for idx in _torch.cartesian_prod(*[_torch.arange(s) for s in x.shape[:-1]]).reshape(-1, x.dim() - 1):
        idx = tuple(idx.tolist())
        vals = [x[idx][k].item() for k in range(x.shape[-1]) if mask[idx][k]]
        out[idx] = sum(vals) / len(vals) if vals else 0.0
    return out


def test_matches_loop_on_several_dims():
    g = _torch.Generator().manual_seed(0)
    x = _torch.randn(3, 5, 4, generator=g)
    mask = _torch.rand(3, 5, 4, generator=g) > 0.4
    for dim in (0, 1, 2, -1, -2):
        out = masked_mean(x, mask, dim)
        _torch.testing.assert_close(out, _expected(x, mask, dim))


def test_empty_selection_gives_zero():
    x = _torch.ones(2, 3)
    mask = _torch.tensor([[False, False, False], [True, False, True]])
    out = masked_mean(x, mask, 1)
    assert out.shape == (2,)
    assert out.tolist() == [0.0, 1.0]


def test_garbage_in_unselected_positions_is_ignored():
    x = _torch.tensor([[1.0, float("nan"), 3.0], [float("inf"), 2.0, float("-inf")]])
    mask = _torch.tensor([[True, False, True], [False, True, False]])
    out = masked_mean(x, mask, -1)
    assert _torch.isfinite(out).all()
    assert out.tolist() == [2.0, 2.0]


def test_dtype_kept_and_inputs_untouched():
    g = _torch.Generator().manual_seed(1)
    x = _torch.randn(4, 6, generator=g, dtype=_torch.float64)
    mask = _torch.rand(4, 6, generator=g) > 0.5
    x0, m0 = x.clone(), mask.clone()
    out = masked_mean(x, mask, 0)
    assert out.dtype == _torch.float64 and out.shape == (6,)
    assert _torch.equal(x, x0) and _torch.equal(mask, m0)
