import torch as _torch


def _slow(rewards, values, dones, gamma, lam):
    b, t = rewards.shape
    adv = _torch.zeros(b, t, dtype=rewards.dtype)
    for i in range(b):
        last = 0.0
        for s in reversed(range(t)):
            not_done = 1.0 - float(dones[i, s])
            delta = float(rewards[i, s]) + gamma * float(values[i, s + 1]) * not_done - float(values[i, s])
            last = delta + gamma * lam * not_done * last
            adv[i, s] = last
    return adv


def _rollout(b, t, seed):
    g = _torch.Generator().manual_seed(seed)
    rewards = _torch.randn(b, t, generator=g)
    values = _torch.randn(b, t + 1, generator=g)
    dones = (_torch.rand(b, t, generator=g) < 0.1).float()
    return rewards, values, dones


def test_matches_loop():
    for b, t, gamma, lam, seed in [(3, 10, 0.99, 0.95, 0), (1, 1, 0.9, 0.8, 1), (4, 17, 1.0, 1.0, 2), (2, 6, 0.5, 0.0, 3)]:
        r, v, d = _rollout(b, t, seed)
        out = gae(r, v, d, gamma, lam)
        assert out.shape == (b, t)
        _torch.testing.assert_close(out, _slow(r, v, d, gamma, lam), rtol=1e-4, atol=1e-4)


def test_episode_boundary_stops_bootstrapping():
    rewards = _torch.tensor([[1.0, 1.0, 1.0]])
    values = _torch.tensor([[0.0, 0.0, 0.0, 100.0]])
    dones = _torch.tensor([[0.0, 0.0, 1.0]])
    out = gae(rewards, values, dones, 1.0, 1.0)
    _torch.testing.assert_close(out, _torch.tensor([[3.0, 2.0, 1.0]]))


def test_speedup():
    r, v, d = _rollout(128, 64, 4)
    _torch.testing.assert_close(gae(r, v, d, 0.99, 0.95), _slow(r, v, d, 0.99, 0.95), rtol=1e-4, atol=1e-4)
    speedup = _mlc_speedup(gae, _slow, (r, v, d, 0.99, 0.95))
    assert speedup >= 5.0, f"only {speedup:.1f}x faster than the loop version"
