import torch as _torch


def _expected(x, positions, base):
    d = x.shape[-1] // 2
    out = _torch.empty_like(x, dtype=_torch.float64)
    for b in range(x.shape[0]):
        for t in range(x.shape[2]):
            pos = float(positions[b, t] if positions.dim() == 2 else positions[t])
            for i in range(d):
                a = pos * base ** (-2 * i / x.shape[-1])
                c, s = _torch.tensor(a).cos(), _torch.tensor(a).sin()
                x1, x2 = x[b, :, t, i].double(), x[b, :, t, d + i].double()
                out[b, :, t, i] = x1 * c - x2 * s
                out[b, :, t, d + i] = x2 * c + x1 * s
    return out


def test_formula_shared_positions():
    _torch.manual_seed(0)
    rope = RotaryEmbedding(8)
    assert list(rope.parameters()) == []
    x = _torch.randn(2, 3, 5, 8)
    positions = _torch.tensor([0, 1, 2, 7, 100])
    out = rope(x, positions)
    assert out.shape == x.shape and out.dtype == _torch.float32
    _torch.testing.assert_close(out.double(), _expected(x, positions, 10000.0), rtol=1e-4, atol=1e-4)


def test_formula_per_sequence_positions_and_base():
    _torch.manual_seed(1)
    rope = RotaryEmbedding(4, base=100.0)
    x = _torch.randn(2, 2, 3, 4)
    positions = _torch.tensor([[0, 1, 2], [5, 6, 7]])
    _torch.testing.assert_close(rope(x, positions).double(), _expected(x, positions, 100.0), rtol=1e-4, atol=1e-4)


def test_relative_position_property():
    _torch.manual_seed(2)
    rope = RotaryEmbedding(16)
    q = _torch.randn(1, 1, 1, 16)
    k = _torch.randn(1, 1, 1, 16)
    dots = []
    for m, n in [(3, 1), (10, 8), (52, 50)]:
        qm = rope(q, _torch.tensor([m]))
        kn = rope(k, _torch.tensor([n]))
        dots.append((qm * kn).sum().item())
    assert max(dots) - min(dots) < 1e-3
    _torch.testing.assert_close(rope(q, _torch.tensor([0])), q)


def test_bfloat16_keeps_dtype():
    rope = RotaryEmbedding(8)
    x = _torch.randn(1, 2, 3, 8).to(_torch.bfloat16)
    out = rope(x, _torch.arange(3))
    assert out.dtype == _torch.bfloat16
    _torch.testing.assert_close(out.double(), _expected(x.float(), _torch.arange(3), 10000.0), rtol=2e-2, atol=2e-2)
