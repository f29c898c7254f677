import torch
import torch.nn.functional as F


def lm_loss(logits, input_ids, pad_id):
    shift_logits = logits[:, :-1].reshape(-1, logits.shape[-1])
    targets = input_ids[:, 1:].reshape(-1)
    targets = torch.where(targets == pad_id, torch.full_like(targets, -100), targets)
    return F.cross_entropy(shift_logits, targets, ignore_index=-100)
