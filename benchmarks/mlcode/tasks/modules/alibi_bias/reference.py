import torch
import torch.nn as nn


class ALiBi(nn.Module):
    def __init__(self, n_heads):
        super().__init__()
        if n_heads < 1 or n_heads & (n_heads - 1):
            raise ValueError("n_heads must be a power of two")
        h = torch.arange(1, n_heads + 1, dtype=torch.float32)
        self.register_buffer("slopes", 2.0 ** (-8.0 * h / n_heads))

    def forward(self, seq_len):
        pos = torch.arange(seq_len, device=self.slopes.device)
        distance = (pos[:, None] - pos[None, :]).to(torch.float32)
        bias = -self.slopes[:, None, None] * distance
        return bias.masked_fill(distance < 0, float("-inf"))
