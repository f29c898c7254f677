import torch


def masked_mean(x, mask, dim):
    kept = torch.where(mask, x, torch.zeros_like(x))
    count = mask.sum(dim=dim).to(x.dtype)
    return kept.sum(dim=dim) / count.clamp(min=1)
