import math as _math

import torch as _torch


def _expected(a, b, eps):
    out = _torch.zeros(a.shape[0], a.shape[1], b.shape[1], dtype=a.dtype)
    for k in range(a.shape[0]):
        for i in range(a.shape[1]):
            for j in range(b.shape[1]):
                na = max(_math.sqrt(float((a[k, i] ** 2).sum())), eps)
                nb = max(_math.sqrt(float((b[k, j] ** 2).sum())), eps)
                out[k, i, j] = float((a[k, i] * b[k, j]).sum()) / (na * nb)
    return out


def test_matches_definition():
    g = _torch.Generator().manual_seed(0)
    a = _torch.randn(2, 4, 6, generator=g, dtype=_torch.float64)
    b = _torch.randn(2, 3, 6, generator=g, dtype=_torch.float64)
    out = pairwise_cosine_similarity(a, b)
    assert out.shape == (2, 4, 3) and out.dtype == _torch.float64
    _torch.testing.assert_close(out, _expected(a, b, 1e-8))


def test_zero_vectors_and_custom_eps():
    a = _torch.tensor([[[0.0, 0.0], [3.0, 4.0]]])
    b = _torch.tensor([[[3.0, 4.0], [0.0, 0.0], [-6.0, -8.0]]])
    out = pairwise_cosine_similarity(a, b)
    _torch.testing.assert_close(out, _torch.tensor([[[0.0, 0.0, 0.0], [1.0, 0.0, -1.0]]]))
    small = _torch.tensor([[[1e-3, 0.0]]])
    out = pairwise_cosine_similarity(small, small, eps=0.1)
    _torch.testing.assert_close(out, _torch.tensor([[[1e-6 / 0.01]]]))


def test_differentiable():
    g = _torch.Generator().manual_seed(1)
    a = _torch.randn(1, 3, 4, generator=g, requires_grad=True)
    b = _torch.randn(1, 2, 4, generator=g)
    pairwise_cosine_similarity(a, b).sum().backward()
    assert a.grad is not None and _torch.isfinite(a.grad).all() and a.grad.abs().sum() > 0
