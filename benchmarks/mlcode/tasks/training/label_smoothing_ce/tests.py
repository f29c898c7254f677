import torch as _torch
import torch.nn.functional as _F


def test_matches_torch_cross_entropy():
    g = _torch.Generator().manual_seed(0)
    logits = _torch.randn(12, 7, generator=g, dtype=_torch.float64)
    targets = _torch.randint(0, 7, (12,), generator=g)
    targets[[2, 5]] = -100
    for eps in (0.0, 0.1, 0.3):
        got = label_smoothing_cross_entropy(logits, targets, smoothing=eps)
        assert got.dim() == 0 and got.dtype == _torch.float64
        _torch.testing.assert_close(got, _F.cross_entropy(logits, targets, label_smoothing=eps))


def test_formula_custom_ignore_index_and_large_logits():
    logits = _torch.tensor([[1000.0, 0.0, -1000.0], [0.0, 0.0, 0.0], [3.0, 2.0, 1.0]])
    targets = _torch.tensor([0, 2, 7])
    got = label_smoothing_cross_entropy(logits, targets, smoothing=0.2, ignore_index=7)
    lp = _torch.log_softmax(logits.double(), -1)
    expected = sum(0.8 * -lp[i, t] + 0.2 * -lp[i].mean() for i, t in [(0, 0), (1, 2)]) / 2
    assert _torch.isfinite(got)
    _torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-4)


def test_all_ignored_and_gradient():
    logits = _torch.randn(3, 4, requires_grad=True)
    loss = label_smoothing_cross_entropy(logits, _torch.full((3,), -100))
    assert loss.item() == 0.0
    loss.backward()
    assert logits.grad is not None and (logits.grad == 0).all()
    logits.grad = None
    label_smoothing_cross_entropy(logits, _torch.tensor([0, 1, -100])).backward()
    assert (logits.grad[2] == 0).all() and logits.grad[:2].abs().sum() > 0
