import torch


def packed_causal_mask(doc_ids):
    t = doc_ids.shape[-1]
    same = doc_ids.unsqueeze(-1) == doc_ids.unsqueeze(-2)
    causal = torch.ones(t, t, dtype=torch.bool, device=doc_ids.device).tril()
    return same & causal
