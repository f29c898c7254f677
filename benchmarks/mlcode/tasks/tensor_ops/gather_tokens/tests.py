import torch as _torch


def test_matches_loop():
    g = _torch.Generator().manual_seed(0)
    x = _torch.randn(3, 7, 5, generator=g)
    idx = _torch.randint(0, 7, (3, 4), generator=g)
    out = gather_tokens(x, idx)
    assert out.shape == (3, 4, 5)
    for b in range(3):
        for k in range(4):
            assert _torch.equal(out[b, k], x[b, idx[b, k]])


def test_repeats_and_more_picks_than_tokens():
    x = _torch.arange(2 * 3 * 2, dtype=_torch.float32).reshape(2, 3, 2)
    idx = _torch.tensor([[0, 0, 2, 1, 2], [2, 2, 2, 0, 1]])
    out = gather_tokens(x, idx)
    assert out.shape == (2, 5, 2)
    assert out[0].tolist() == [[0, 1], [0, 1], [4, 5], [2, 3], [4, 5]]
    assert out[1].tolist() == [[10, 11], [10, 11], [10, 11], [6, 7], [8, 9]]


def test_gradient_counts_picks():
    x = _torch.zeros(1, 4, 3, requires_grad=True)
    idx = _torch.tensor([[3, 1, 3, 3]])
    gather_tokens(x, idx).sum().backward()
    assert x.grad[0, :, 0].tolist() == [0.0, 1.0, 0.0, 3.0]
