import torch as _torch


def _inputs(seed):
    g = _torch.Generator().manual_seed(seed)
    return [_torch.randn(*s, generator=g, dtype=_torch.float64).requires_grad_(True) for s in [(4, 3), (3, 3), (3, 3)]]


def test_value():
    x, wg, wv = _inputs(0)
    out = gated_residual(x, wg, wv)
    _torch.testing.assert_close(out, x + _torch.tanh(x @ wv) * _torch.sigmoid(x @ wg))


def test_backward_matches_out_of_place_formula():
    x, wg, wv = _inputs(1)
    gated_residual(x, wg, wv).pow(2).sum().backward()
    grads = [t.grad.clone() for t in (x, wg, wv)]
    x2, wg2, wv2 = _inputs(1)
    (x2 + _torch.tanh(x2 @ wv2) * _torch.sigmoid(x2 @ wg2)).pow(2).sum().backward()
    for got, want in zip(grads, (x2.grad, wg2.grad, wv2.grad)):
        _torch.testing.assert_close(got, want)
