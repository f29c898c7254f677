import math as _math

import torch as _torch


def _expected(logits, labels, ignore_index):
    out = []
    for b in range(logits.shape[0]):
        total = 0.0
        for t in range(logits.shape[1] - 1):
            y = int(labels[b, t + 1])
            if y == ignore_index:
                continue
            row = logits[b, t].double()
            total += float(row[y] - row.max() - _math.log(float((row - row.max()).exp().sum())))
        out.append(total)
    return _torch.tensor(out, dtype=logits.dtype)


def test_matches_loop_with_ignored_labels():
    g = _torch.Generator().manual_seed(0)
    logits = _torch.randn(3, 6, 11, generator=g)
    labels = _torch.randint(0, 11, (3, 6), generator=g)
    labels[0, 4:] = -100
    labels[1, 0] = -100  # position 0 is never a target anyway
    labels[2, 1:] = -100  # nothing counted
    out = sequence_logprobs(logits, labels)
    assert out.shape == (3,) and out.dtype == _torch.float32
    _torch.testing.assert_close(out, _expected(logits, labels, -100), rtol=1e-5, atol=1e-5)
    assert out[2].item() == 0.0


def test_custom_ignore_index_and_single_position():
    g = _torch.Generator().manual_seed(1)
    logits = _torch.randn(2, 5, 4, generator=g, dtype=_torch.float64)
    labels = _torch.randint(0, 4, (2, 5), generator=g)
    labels[:, 3] = 0
    out = sequence_logprobs(logits, labels, ignore_index=0)
    _torch.testing.assert_close(out, _expected(logits, labels, 0))
    assert sequence_logprobs(logits[:, :1], labels[:, :1]).tolist() == [0.0, 0.0]


def test_large_logits_stable_and_differentiable():
    g = _torch.Generator().manual_seed(2)
    logits = (_torch.randn(2, 4, 5, generator=g) * 1e4).requires_grad_(True)
    labels = _torch.randint(0, 5, (2, 4), generator=g)
    out = sequence_logprobs(logits, labels)
    assert _torch.isfinite(out).all()
    _torch.testing.assert_close(out.detach(), _expected(logits.detach(), labels, -100), rtol=1e-4, atol=1e-2)
    out.sum().backward()
    assert _torch.isfinite(logits.grad).all()
    assert logits.grad[:, -1].abs().sum() == 0  # the last position predicts nothing
