import torch as _torch
import torch.nn.functional as _F


def test_matches_functional_layer_norm():
    g = _torch.Generator().manual_seed(0)
    x = _torch.randn(4, 6, generator=g) * 3 + 1
    w, b = _torch.randn(6, generator=g), _torch.randn(6, generator=g)
    _torch.testing.assert_close(layer_norm(x, w, b), _F.layer_norm(x, (6,), w, b, 1e-5))
    x3 = _torch.randn(2, 3, 6, generator=g)
    _torch.testing.assert_close(layer_norm(x3, w, b, eps=1e-3), _F.layer_norm(x3, (6,), w, b, 1e-3))


def test_examples_are_independent():
    g = _torch.Generator().manual_seed(1)
    x = _torch.randn(5, 4, generator=g)
    w, b = _torch.ones(4), _torch.zeros(4)
    alone = layer_norm(x[:1], w, b)
    assert _torch.isfinite(alone).all()
    _torch.testing.assert_close(layer_norm(x, w, b)[:1], alone)
