import torch


def run_epoch(model, loader, loss_fn, optimizer=None):
    was_training = model.training
    train = optimizer is not None
    model.train(train)
    total, count = 0.0, 0
    try:
        with torch.set_grad_enabled(train):
            for x, y in loader:
                loss = loss_fn(model(x), y)
                if train:
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                total += loss.item() * len(x)
                count += len(x)
    finally:
        model.train(was_training)
    return total / count
