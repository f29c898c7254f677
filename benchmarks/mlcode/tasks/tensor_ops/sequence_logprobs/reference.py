import torch


def sequence_logprobs(logits, labels, ignore_index=-100):
    targets = labels[:, 1:]
    valid = targets != ignore_index
    safe = targets.masked_fill(~valid, 0)
    logp = torch.log_softmax(logits[:, :-1], dim=-1)
    picked = logp.gather(-1, safe.unsqueeze(-1)).squeeze(-1)
    return torch.where(valid, picked, torch.zeros_like(picked)).sum(dim=-1)
