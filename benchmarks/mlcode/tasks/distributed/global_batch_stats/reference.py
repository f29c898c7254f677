import torch
import torch.distributed as dist


def global_batch_stats(x):
    # Gather (count, mean, M2) of every rank in float64 and combine them with Chan's formula.
    x64 = x.detach().to(torch.float64)
    n = x64.shape[0]
    c = x64.shape[1]
    local_mean = x64.mean(0) if n else torch.zeros(c, dtype=torch.float64)
    local_m2 = ((x64 - local_mean) ** 2).sum(0) if n else torch.zeros(c, dtype=torch.float64)
    packed = torch.cat([torch.tensor([float(n)], dtype=torch.float64), local_mean, local_m2])
    gathered = [torch.zeros_like(packed) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, packed)
    count = torch.zeros((), dtype=torch.float64)
    mean = torch.zeros(c, dtype=torch.float64)
    m2 = torch.zeros(c, dtype=torch.float64)
    for g in gathered:
        nb, mb, m2b = g[0], g[1 : 1 + c], g[1 + c :]
        if nb == 0:
            continue
        total = count + nb
        delta = mb - mean
        mean = mean + delta * nb / total
        m2 = m2 + m2b + delta**2 * count * nb / total
        count = total
    return mean.to(x.dtype), (m2 / count).to(x.dtype)
