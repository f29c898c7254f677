import torch


def regression_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return ((pred.reshape(-1) - target.reshape(-1)) ** 2).mean()
