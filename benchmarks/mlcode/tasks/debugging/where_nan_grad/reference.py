import torch


def xlogx(p):
    positive = p > 0
    safe = torch.where(positive, p, torch.ones_like(p))
    return torch.where(positive, p * torch.log(safe), torch.zeros_like(p))
