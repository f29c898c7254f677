import torch
import torch.nn as nn
import torch.nn.functional as F


def train_classifier(X, y, num_classes, seed=0):
    torch.manual_seed(seed)
    mean, std = X.mean(0), X.std(0) + 1e-6

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("mean", mean.clone())
            self.register_buffer("std", std.clone())
            self.mlp = nn.Sequential(nn.Linear(2, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, num_classes))

        def forward(self, x):
            return self.mlp((x - self.mean) / self.std)

    model = Net()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(400):
        opt.zero_grad()
        F.cross_entropy(model(X), y).backward()
        opt.step()
    return model.eval()
