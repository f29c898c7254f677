import torch


def gather_tokens(x, idx):
    index = idx.unsqueeze(-1).expand(-1, -1, x.shape[-1])
    return torch.gather(x, 1, index)
