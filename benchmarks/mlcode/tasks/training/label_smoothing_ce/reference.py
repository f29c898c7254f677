import torch


def label_smoothing_cross_entropy(logits, targets, smoothing=0.1, ignore_index=-100):
    valid = targets != ignore_index
    logp = torch.log_softmax(logits, dim=-1)
    safe = targets.masked_fill(~valid, 0)
    nll = -logp.gather(1, safe.unsqueeze(1)).squeeze(1)
    uniform = -logp.mean(dim=-1)
    per_sample = (1 - smoothing) * nll + smoothing * uniform
    per_sample = torch.where(valid, per_sample, torch.zeros_like(per_sample))
    return per_sample.sum() / valid.sum().clamp(min=1)
