import math

import torch


def multi_head_attention(x, w_qkv, w_out, n_heads):
    b, t, d = x.shape
    hd = d // n_heads
    q, k, v = (x @ w_qkv.T).split(d, dim=-1)
    q, k, v = (z.reshape(b, t, n_heads, hd).transpose(1, 2) for z in (q, k, v))
    scores = q @ k.transpose(-1, -2) / math.sqrt(hd)
    causal = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
    scores = scores.masked_fill(causal, float("-inf"))
    y = torch.softmax(scores, dim=-1) @ v
    return y.transpose(1, 2).reshape(b, t, d) @ w_out.T
