import torch


def write_kv_cache(cache, new, start):
    b, h, s, d = cache.shape
    n = new.shape[2]
    if bool((start < 0).any()) or bool((start + n > s).any()):
        raise ValueError("write out of cache bounds")
    positions = start.view(b, 1) + torch.arange(n, device=cache.device).view(1, n)
    index = positions.view(b, 1, n, 1).expand(b, h, n, d)
    cache.scatter_(2, index, new)
    return cache
