import torch
import torch.nn as nn
from torch.utils.checkpoint import checkpoint


class CheckpointedMLP(nn.Module):
    def __init__(self, dim, hidden, n_blocks, use_checkpoint=True):
        super().__init__()
        self.use_checkpoint = use_checkpoint
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)) for _ in range(n_blocks)
        )

    def forward(self, x):
        recompute = self.use_checkpoint and self.training and torch.is_grad_enabled()
        for block in self.blocks:
            x = x + (checkpoint(block, x, use_reentrant=False) if recompute else block(x))
        return x
