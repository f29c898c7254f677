import math

import torch
import torch.nn as nn


class CrossAttention(nn.Module):
    def __init__(self, d_model, n_heads):
        super().__init__()
        self.n_heads = n_heads
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)

    def forward(self, x, context, context_mask=None):
        b, t, d = x.shape
        s = context.shape[1]
        hd = d // self.n_heads
        q = self.q_proj(x).view(b, t, self.n_heads, hd).transpose(1, 2)
        k = self.k_proj(context).view(b, s, self.n_heads, hd).transpose(1, 2)
        v = self.v_proj(context).view(b, s, self.n_heads, hd).transpose(1, 2)
        scores = q @ k.transpose(-1, -2) / math.sqrt(hd)
        if context_mask is not None:
            valid = context_mask[:, None, None, :]
            scores = scores.masked_fill(~valid, float("-inf"))
            attn = torch.softmax(scores, dim=-1)
            attn = torch.where(valid.any(dim=-1, keepdim=True), attn, torch.zeros_like(attn))
        else:
            attn = torch.softmax(scores, dim=-1)
        y = (attn @ v).transpose(1, 2).reshape(b, t, d)
        return self.out_proj(y)
