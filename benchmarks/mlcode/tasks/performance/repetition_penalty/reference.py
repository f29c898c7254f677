import torch


def apply_repetition_penalty(logits, prev_tokens, penalty):
    picked = torch.gather(logits, 1, prev_tokens)
    penalised = torch.where(picked > 0, picked / penalty, picked * penalty)
    return logits.scatter(1, prev_tokens, penalised)
