import torch
import torch.nn as nn


class MoELayer(nn.Module):
    def __init__(self, d_model, d_hidden, n_experts, k):
        super().__init__()
        self.k = k
        self.router = nn.Linear(d_model, n_experts, bias=False)
        self.experts = nn.ModuleList(
            nn.Sequential(nn.Linear(d_model, d_hidden), nn.GELU(), nn.Linear(d_hidden, d_model))
            for _ in range(n_experts)
        )

    def forward(self, x):
        tokens = x.reshape(-1, x.shape[-1])
        top_logits, top_idx = torch.topk(self.router(tokens), self.k, dim=-1)
        weights = torch.softmax(top_logits, dim=-1)
        out = torch.zeros_like(tokens)
        for e, expert in enumerate(self.experts):
            rows, slots = (top_idx == e).nonzero(as_tuple=True)
            if rows.numel() == 0:
                continue
            contribution = expert(tokens[rows]) * weights[rows, slots].unsqueeze(-1)
            out = out.index_add(0, rows, contribution)
        return out.view_as(x)
