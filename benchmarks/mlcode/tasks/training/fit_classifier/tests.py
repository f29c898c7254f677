import math as _math

import torch as _torch


def _rings(n, seed):
    g = _torch.Generator().manual_seed(seed)
    y = _torch.randint(0, 3, (n,), generator=g)
    radius = 1.0 + 1.5 * y.float() + 0.25 * _torch.randn(n, generator=g)
    angle = 2 * _math.pi * _torch.rand(n, generator=g)
    return _torch.stack([radius * angle.cos(), radius * angle.sin()], dim=1) * 3.0 + 5.0, y


def _moons(n, seed):
    g = _torch.Generator().manual_seed(seed)
    y = _torch.randint(0, 2, (n,), generator=g)
    t = _math.pi * _torch.rand(n, generator=g)
    x0 = _torch.where(y == 0, t.cos(), 1 - t.cos())
    x1 = _torch.where(y == 0, t.sin(), 0.5 - t.sin())
    return _torch.stack([x0, x1], 1) + 0.1 * _torch.randn(n, 2, generator=g), y


def _accuracy(model, X, y):
    model.eval()
    with _torch.no_grad():
        logits = model(X)
    assert logits.shape == (len(X), int(y.max()) + 1)
    return (logits.argmax(1) == y).float().mean().item()


def test_concentric_rings():
    X, y = _rings(600, 0)
    model = train_classifier(X, y, 3)
    Xt, yt = _rings(1000, 1)
    assert _accuracy(model, Xt, yt) >= 0.9


def test_half_moons_and_determinism():
    X, y = _moons(600, 2)
    a = train_classifier(X, y, 2, seed=7)
    Xt, yt = _moons(1000, 3)
    assert _accuracy(a, Xt, yt) >= 0.9
    b = train_classifier(X, y, 2, seed=7)
    b.eval()
    with _torch.no_grad():
        assert _torch.equal(a(Xt), b(Xt))
