import torch as _torch


def _slow(weight, indices, offsets):
    out = _torch.zeros(offsets.shape[0], weight.shape[1], dtype=weight.dtype)
    bounds = offsets.tolist() + [indices.shape[0]]
    for b in range(offsets.shape[0]):
        rows = [weight[i] for i in indices[bounds[b] : bounds[b + 1]].tolist()]
        if rows:
            out[b] = _torch.stack(rows).mean(dim=0)
    return out


def _inputs(v, d, bags, n, seed):
    g = _torch.Generator().manual_seed(seed)
    weight = _torch.randn(v, d, generator=g)
    indices = _torch.randint(0, v, (n,), generator=g)
    cuts = _torch.sort(_torch.randint(0, n + 1, (bags - 1,), generator=g)).values
    offsets = _torch.cat([_torch.zeros(1, dtype=_torch.long), cuts])
    return weight, indices, offsets


def test_matches_loop_with_empty_bags():
    weight, indices, offsets = _inputs(20, 4, 6, 15, 0)
    offsets = _torch.tensor([0, 0, 3, 3, 9, 15])  # bags 0, 2 and 5 are empty
    out = embedding_bag_mean(weight, indices, offsets)
    assert out.shape == (6, 4)
    _torch.testing.assert_close(out, _slow(weight, indices, offsets), rtol=1e-5, atol=1e-6)
    assert (out[[0, 2, 5]] == 0).all()
    for seed in (1, 2):
        w, i, o = _inputs(50, 8, 10, 40, seed)
        _torch.testing.assert_close(embedding_bag_mean(w, i, o), _slow(w, i, o), rtol=1e-5, atol=1e-6)


def test_speedup():
    weight, indices, offsets = _inputs(1000, 32, 256, 4000, 3)
    _torch.testing.assert_close(embedding_bag_mean(weight, indices, offsets), _slow(weight, indices, offsets), rtol=1e-5, atol=1e-6)
    speedup = _mlc_speedup(embedding_bag_mean, _slow, (weight, indices, offsets))
    assert speedup >= 5.0, f"only {speedup:.1f}x faster than the loop version"
