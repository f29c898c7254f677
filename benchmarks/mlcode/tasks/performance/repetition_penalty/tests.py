import torch as _torch


def _slow(logits, prev_tokens, penalty):
    out = logits.clone()
    for b in range(logits.shape[0]):
        for token in set(prev_tokens[b].tolist()):
            value = out[b, token]
            out[b, token] = value / penalty if value > 0 else value * penalty
    return out


def _inputs(b, v, t, seed):
    g = _torch.Generator().manual_seed(seed)
    return _torch.randn(b, v, generator=g) * 3, _torch.randint(0, v, (b, t), generator=g)


def test_matches_loop_with_repeats():
    logits, prev = _inputs(4, 20, 30, 0)  # many repeated ids
    before = logits.clone()
    for penalty in (1.3, 0.7):
        out = apply_repetition_penalty(logits, prev, penalty)
        assert _torch.equal(out, _slow(logits, prev, penalty))
    assert _torch.equal(logits, before)


def test_zero_and_negative_logits():
    logits = _torch.tensor([[0.0, -2.0, 4.0, 1.0]])
    out = apply_repetition_penalty(logits, _torch.tensor([[0, 1, 2, 2, 1]]), 2.0)
    assert out.tolist() == [[0.0, -4.0, 2.0, 1.0]]


def test_speedup():
    logits, prev = _inputs(32, 1000, 128, 1)
    assert _torch.equal(apply_repetition_penalty(logits, prev, 1.2), _slow(logits, prev, 1.2))
    speedup = _mlc_speedup(apply_repetition_penalty, _slow, (logits, prev, 1.2))
    assert speedup >= 5.0, f"only {speedup:.1f}x faster than the loop version"
