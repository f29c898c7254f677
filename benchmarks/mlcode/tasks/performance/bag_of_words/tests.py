import torch as _torch


def _slow(token_ids, vocab_size, pad_id):
    out = _torch.zeros(token_ids.shape[0], vocab_size, dtype=_torch.int64)
    for b in range(token_ids.shape[0]):
        for t in token_ids[b].tolist():
            if t != pad_id:
                out[b, t] += 1
    return out


def test_matches_loop():
    g = _torch.Generator().manual_seed(0)
    ids = _torch.randint(0, 8, (5, 12), generator=g)
    for pad in (0, 7, -1):
        out = bag_of_words(ids, 8, pad)
        assert out.dtype == _torch.int64 and out.shape == (5, 8)
        assert _torch.equal(out, _slow(ids, 8, pad))


def test_all_padding_and_empty_rows():
    assert _torch.equal(bag_of_words(_torch.zeros(2, 4, dtype=_torch.long), 3, 0), _torch.zeros(2, 3, dtype=_torch.long))
    assert bag_of_words(_torch.zeros(3, 0, dtype=_torch.long), 5, 0).shape == (3, 5)


def test_speedup():
    ids = _torch.randint(0, 500, (32, 256), generator=_torch.Generator().manual_seed(1))
    assert _torch.equal(bag_of_words(ids, 500, 0), _slow(ids, 500, 0))
    speedup = _mlc_speedup(bag_of_words, _slow, (ids, 500, 0))
    assert speedup >= 5.0, f"only {speedup:.1f}x faster than the loop version"
