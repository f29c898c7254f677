import torch
import torch.nn as nn


class Int8Linear(nn.Module):
    def __init__(self, weight_int8, scale, bias):
        super().__init__()
        self.register_buffer("weight_int8", weight_int8)
        self.register_buffer("scale", scale)
        self.register_buffer("bias", bias)

    @classmethod
    @torch.no_grad()
    def from_float(cls, linear):
        w = linear.weight.detach().float()
        scale = w.abs().amax(dim=1) / 127
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        q = torch.clamp(torch.round(w / scale[:, None]), -127, 127).to(torch.int8)
        bias = None if linear.bias is None else linear.bias.detach().float().clone()
        return cls(q, scale, bias)

    def forward(self, x):
        weight = self.weight_int8.float() * self.scale[:, None]
        out = x @ weight.T
        return out if self.bias is None else out + self.bias
