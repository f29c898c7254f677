import torch


def accumulated_step(model: torch.nn.Module, optimizer, micro_batches, loss_fn) -> float:
    total = sum(len(x) for x, _ in micro_batches)
    optimizer.zero_grad()
    total_loss = 0.0
    for x, y in micro_batches:
        loss = loss_fn(model(x), y) * (len(x) / total)
        loss.backward()
        total_loss += loss.item()
    optimizer.step()
    return total_loss
