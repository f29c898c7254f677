import torch as _torch


def test_nucleus_sizes():
    probs = _torch.tensor([[0.5, 0.3, 0.2], [0.1, 0.85, 0.05], [0.25, 0.25, 0.5]])
    logits = probs.log()
    out = top_p_filter(logits, 0.7)
    kept = _torch.isfinite(out)
    assert kept.tolist() == [[True, True, False], [False, True, False], [False, True, True]] or kept.tolist() == [
        [True, True, False],
        [False, True, False],
        [True, False, True],
    ]
    assert _torch.equal(out[kept], logits[kept])


def test_peaked_distribution_can_be_sampled():
    logits = _torch.tensor([[8.0, 0.0, 0.0, -1.0], [0.0, 0.1, 9.0, 0.0]])
    out = top_p_filter(logits, 0.9)
    assert _torch.isfinite(out).sum(-1).tolist() == [1, 1]
    probs = _torch.softmax(out, dim=-1)
    assert _torch.isfinite(probs).all()
    assert _torch.multinomial(probs, 1, generator=_torch.Generator().manual_seed(0)).squeeze(1).tolist() == [0, 2]


def test_p_one_keeps_everything_and_random_rows():
    g = _torch.Generator().manual_seed(1)
    logits = _torch.randn(5, 12, generator=g) * 2
    assert _torch.isfinite(top_p_filter(logits, 1.0)).all()
    out = top_p_filter(logits, 0.6)
    for row, filtered in zip(logits, out):
        probs = _torch.softmax(row, 0)
        order = _torch.argsort(probs, descending=True)
        total, expected = 0.0, set()
        for idx in order.tolist():
            if total >= 0.6:
                break
            expected.add(idx)
            total += probs[idx].item()
        assert set(_torch.isfinite(filtered).nonzero().flatten().tolist()) == expected
