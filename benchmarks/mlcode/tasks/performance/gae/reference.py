import torch


def gae(rewards, values, dones, gamma, lam):
    b, t = rewards.shape
    not_done = 1.0 - dones
    deltas = rewards + gamma * values[:, 1:] * not_done - values[:, :-1]
    adv = torch.zeros_like(rewards)
    last = torch.zeros(b, dtype=rewards.dtype)
    for s in reversed(range(t)):
        last = deltas[:, s] + gamma * lam * not_done[:, s] * last
        adv[:, s] = last
    return adv
