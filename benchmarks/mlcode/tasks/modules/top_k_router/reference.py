import torch
import torch.nn as nn
import torch.nn.functional as F


class TopKRouter(nn.Module):
    def __init__(self, d_model, n_experts, k):
        super().__init__()
        self.n_experts = n_experts
        self.k = k
        self.gate = nn.Linear(d_model, n_experts, bias=False)

    def forward(self, x):
        logits = self.gate(x)
        top_logits, indices = torch.topk(logits, self.k, dim=-1)
        weights = torch.softmax(top_logits, dim=-1)
        probs = torch.softmax(logits, dim=-1)
        counts = F.one_hot(indices, self.n_experts).sum(dim=(0, 1)).to(probs.dtype)
        fraction = counts / indices.numel()
        aux_loss = self.n_experts * (fraction * probs.mean(dim=0)).sum()
        return weights, indices, aux_loss
