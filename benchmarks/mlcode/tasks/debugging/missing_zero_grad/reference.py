import torch


def train_steps(model: torch.nn.Module, optimizer, batches, loss_fn):
    losses = []
    model.train()
    for x, y in batches:
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses
