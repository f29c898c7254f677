import torch


def pairwise_cosine_similarity(a, b, eps=1e-8):
    a_n = a / a.norm(dim=-1, keepdim=True).clamp(min=eps)
    b_n = b / b.norm(dim=-1, keepdim=True).clamp(min=eps)
    return torch.einsum("bnd,bmd->bnm", a_n, b_n)
