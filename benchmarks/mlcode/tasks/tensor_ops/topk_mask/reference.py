import torch


def topk_mask(scores, k):
    k = max(0, min(int(k), scores.shape[-1]))
    order = torch.sort(scores, dim=-1, descending=True, stable=True).indices
    mask = torch.zeros_like(scores, dtype=torch.bool)
    return mask.scatter(-1, order[..., :k], True)
