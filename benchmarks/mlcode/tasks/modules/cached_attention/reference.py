import math

import torch
import torch.nn as nn


class CachedCausalSelfAttention(nn.Module):
    def __init__(self, d_model, n_heads):
        super().__init__()
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x, cache=None):
        b, t_new, d = x.shape
        hd = d // self.n_heads
        q, k, v = (z.view(b, t_new, self.n_heads, hd).transpose(1, 2) for z in self.qkv(x).split(d, dim=-1))
        if cache is not None:
            k = torch.cat([cache[0], k], dim=2)
            v = torch.cat([cache[1], v], dim=2)
        t_past = k.shape[2] - t_new
        query_pos = torch.arange(t_new, device=x.device)[:, None] + t_past
        key_pos = torch.arange(k.shape[2], device=x.device)[None, :]
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        scores = scores.masked_fill(key_pos > query_pos, float("-inf"))
        y = torch.softmax(scores, dim=-1) @ v
        return self.proj(y.transpose(1, 2).reshape(b, t_new, d)), (k, v)
