import math as _math

import torch as _torch


def _expected(m, x, context, mask, n_heads):
    b, t, d = x.shape
    hd = d // n_heads
    q = x @ m.q_proj.weight.T + m.q_proj.bias
    k = context @ m.k_proj.weight.T + m.k_proj.bias
    v = context @ m.v_proj.weight.T + m.v_proj.bias
    y = _torch.zeros(b, t, d)
    for bi in range(b):
        valid = [j for j in range(context.shape[1]) if mask is None or bool(mask[bi, j])]
        if not valid:
            continue
        for h in range(n_heads):
            sl = slice(h * hd, (h + 1) * hd)
            scores = q[bi, :, sl] @ k[bi, valid, sl].T / _math.sqrt(hd)
            y[bi, :, sl] = scores.softmax(-1) @ v[bi, valid, sl]
    return y @ m.out_proj.weight.T + m.out_proj.bias


def test_parameters():
    m = CrossAttention(8, 2)
    names = sorted(n for n, _ in m.named_parameters())
    assert names == sorted(f"{p}.{w}" for p in ("q_proj", "k_proj", "v_proj", "out_proj") for w in ("weight", "bias"))


def test_without_mask():
    _torch.manual_seed(0)
    m = CrossAttention(8, 2)
    x, ctx = _torch.randn(2, 3, 8), _torch.randn(2, 5, 8)
    out = m(x, ctx)
    assert out.shape == (2, 3, 8)
    _torch.testing.assert_close(out, _expected(m, x, ctx, None, 2), rtol=1e-4, atol=1e-5)


def test_padding_mask_and_empty_context():
    _torch.manual_seed(1)
    m = CrossAttention(12, 3)
    x, ctx = _torch.randn(3, 4, 12), _torch.randn(3, 6, 12)
    mask = _torch.tensor([[True] * 6, [True, True, False, True, False, False], [False] * 6])
    out = m(x, ctx, mask)
    assert _torch.isfinite(out).all()
    _torch.testing.assert_close(out, _expected(m, x, ctx, mask, 3), rtol=1e-4, atol=1e-5)
    _torch.testing.assert_close(out[2], m.out_proj.bias.detach().expand(4, 12))
    ctx2 = ctx.clone()
    ctx2[1, 2] = 100.0
    ctx2[1, 5] = -100.0
    _torch.testing.assert_close(m(x, ctx2, mask), out)
