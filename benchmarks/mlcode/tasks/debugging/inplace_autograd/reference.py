import torch


def gated_residual(x, w_gate, w_value):
    gate = torch.sigmoid(x @ w_gate)
    value = torch.tanh(x @ w_value)
    return x + value * gate
