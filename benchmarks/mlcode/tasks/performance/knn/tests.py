import torch as _torch


def _slow(queries, points, k):
    out = _torch.empty(queries.shape[0], k, dtype=_torch.int64)
    for i in range(queries.shape[0]):
        d = [float(((queries[i] - points[j]) ** 2).sum()) for j in range(points.shape[0])]
        out[i] = _torch.tensor(sorted(range(len(d)), key=lambda j: (d[j], j))[:k])
    return out


def _check(queries, points, k, got):
    assert got.dtype == _torch.int64 and got.shape == (queries.shape[0], k)
    d = ((queries[:, None, :].double() - points[None, :, :].double()) ** 2).sum(-1)
    want = d.gather(1, _slow(queries, points, k))
    have = d.gather(1, got)
    _torch.testing.assert_close(have, want, rtol=0, atol=1e-4)
    assert all(len(set(row)) == k for row in got.tolist())


def _inputs(q, p, dim, seed):
    g = _torch.Generator().manual_seed(seed)
    return _torch.randn(q, dim, generator=g), _torch.randn(p, dim, generator=g)


def test_matches_loop():
    for q, p, dim, k, seed in [(5, 12, 3, 4, 0), (3, 7, 2, 7, 1), (6, 20, 5, 1, 2)]:
        queries, points = _inputs(q, p, dim, seed)
        _check(queries, points, k, knn(queries, points, k))


def test_query_on_a_point_finds_it_first():
    _, points = _inputs(1, 30, 4, 3)
    got = knn(points[[4, 17]], points, 3)
    assert got[:, 0].tolist() == [4, 17]


def test_speedup():
    queries, points = _inputs(60, 150, 8, 4)
    _check(queries, points, 5, knn(queries, points, 5))
    speedup = _mlc_speedup(knn, _slow, (queries, points, 5))
    assert speedup >= 5.0, f"only {speedup:.1f}x faster than the loop version"
