import torch


def bce_with_logits(logits, targets):
    # max(z, 0) - z * y + log(1 + exp(-|z|)): never exponentiates a large positive number.
    loss = torch.clamp(logits, min=0) - logits * targets + torch.log1p(torch.exp(-logits.abs()))
    return loss.mean()
