import torch


def running_max(x):
    if x.shape[1] == 0:
        return x.clone()
    return torch.cummax(x, dim=1).values
