import torch as _torch
import torch.nn as _nn


def _expected(m, x, k):
    tokens = x.reshape(-1, x.shape[-1])
    out = _torch.zeros_like(tokens)
    for i, u in enumerate(tokens):
        logits = m.router(u)
        chosen = sorted(range(logits.numel()), key=lambda e: -logits[e].item())[:k]
        w = _torch.softmax(logits[chosen], dim=0)
        for j, e in enumerate(chosen):
            out[i] = out[i] + w[j] * m.experts[e](u)
    return out.view_as(x)


def test_structure():
    m = MoELayer(6, 10, 4, 2)
    assert isinstance(m.experts, _nn.ModuleList) and len(m.experts) == 4
    shapes = {n: tuple(p.shape) for n, p in m.named_parameters()}
    assert shapes["router.weight"] == (4, 6)
    assert shapes["experts.3.0.weight"] == (10, 6) and shapes["experts.3.2.weight"] == (6, 10)
    assert len(shapes) == 1 + 4 * 4


def test_matches_per_token_loop():
    _torch.manual_seed(0)
    m = MoELayer(6, 12, 5, 2)
    x = _torch.randn(2, 7, 6)
    out = m(x)
    assert out.shape == x.shape
    with _torch.no_grad():
        _torch.testing.assert_close(out, _expected(m, x, 2), rtol=1e-4, atol=1e-5)


def test_k_equals_all_experts_is_dense_mixture():
    _torch.manual_seed(1)
    m = MoELayer(4, 8, 3, 3)
    x = _torch.randn(1, 5, 4)
    w = _torch.softmax(m.router(x), dim=-1)
    dense = sum(w[..., e : e + 1] * m.experts[e](x) for e in range(3))
    _torch.testing.assert_close(m(x), dense, rtol=1e-4, atol=1e-5)


def test_unselected_expert_gets_no_gradient():
    _torch.manual_seed(2)
    m = MoELayer(4, 8, 3, 1)
    with _torch.no_grad():
        m.router.weight.zero_()
        m.router.weight[0, 0] = 10.0  # every token with x[..., 0] > 0 goes to expert 0, others to expert 1
        m.router.weight[1, 0] = -10.0
    x = _torch.randn(2, 6, 4)
    x[..., 0] = x[..., 0].abs() + 0.5
    x[1, :3, 0] *= -1
    m(x).sum().backward()
    unused = m.experts[2]
    assert all(p.grad is None or (p.grad == 0).all() for p in unused.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.experts[0].parameters())
    assert m.experts[1][0].weight.grad is not None and m.experts[1][0].weight.grad.abs().sum() > 0
