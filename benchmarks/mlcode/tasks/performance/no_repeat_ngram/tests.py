import torch as _torch


def _slow(tokens, n, vocab_size):
    b, t = tokens.shape
    banned = _torch.zeros(b, vocab_size, dtype=_torch.bool)
    for row in range(b):
        seq = tokens[row].tolist()
        prefix = seq[t - n + 1 :]
        for i in range(t - n + 1):
            if seq[i : i + n - 1] == prefix:
                banned[row, seq[i + n - 1]] = True
    return banned


def test_example():
    tokens = _torch.tensor([[1, 2, 3, 1, 2], [4, 4, 4, 4, 4]])
    out = banned_next_tokens(tokens, 3, 6)
    assert out.dtype == _torch.bool and out.shape == (2, 6)
    assert out.nonzero().tolist() == [[0, 3], [1, 4]]


def test_matches_loop():
    g = _torch.Generator().manual_seed(0)
    tokens = _torch.randint(0, 4, (6, 20), generator=g)
    for n in (1, 2, 3, 4, 20, 21, 25):
        assert _torch.equal(banned_next_tokens(tokens, n, 4), _slow(tokens, n, 4)), n
    short = tokens[:, :2]
    assert not banned_next_tokens(short, 3, 4).any()


def test_speedup():
    tokens = _torch.randint(0, 50, (64, 512), generator=_torch.Generator().manual_seed(1))
    assert _torch.equal(banned_next_tokens(tokens, 2, 50), _slow(tokens, 2, 50))
    speedup = _mlc_speedup(banned_next_tokens, _slow, (tokens, 2, 50))
    assert speedup >= 5.0, f"only {speedup:.1f}x faster than the loop version"
