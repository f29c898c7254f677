import torch as _torch


def test_selection_and_weights():
    _torch.manual_seed(0)
    router = TopKRouter(6, 5, 2)
    assert {n: tuple(p.shape) for n, p in router.named_parameters()} == {"gate.weight": (5, 6)}
    x = _torch.randn(10, 6)
    weights, indices, _ = router(x)
    logits = x @ router.gate.weight.T
    assert indices.dtype == _torch.long and indices.shape == (10, 2) and weights.shape == (10, 2)
    for i in range(10):
        order = sorted(range(5), key=lambda e: -logits[i, e].item())[:2]
        assert indices[i].tolist() == order
        _torch.testing.assert_close(weights[i], _torch.softmax(logits[i, order], dim=0))


def test_aux_loss_value():
    _torch.manual_seed(1)
    router = TopKRouter(4, 3, 2)
    x = _torch.randn(7, 4)
    _, indices, aux = router(x)
    probs = _torch.softmax(x @ router.gate.weight.T, dim=-1)
    counts = _torch.tensor([(indices == e).sum().item() for e in range(3)], dtype=_torch.float32)
    expected = 3 * ((counts / 14) * probs.mean(0)).sum()
    assert aux.dim() == 0
    _torch.testing.assert_close(aux, expected)


def test_aux_loss_gradient_goes_through_probabilities():
    _torch.manual_seed(2)
    router = TopKRouter(4, 4, 1)
    x = _torch.randn(9, 4)
    _, indices, aux = router(x)
    aux.backward()
    grad = router.gate.weight.grad.clone()
    w = router.gate.weight.detach().clone().requires_grad_(True)
    counts = _torch.tensor([(indices == e).sum().item() for e in range(4)], dtype=_torch.float32)
    (4 * ((counts / 9) * _torch.softmax(x @ w.T, -1).mean(0)).sum()).backward()
    _torch.testing.assert_close(grad, w.grad)
