import torch


def evaluate(model, loader):
    was_training = model.training
    model.eval()
    correct, total = 0, 0
    try:
        with torch.no_grad():
            for x, y in loader:
                logits = model(x)
                correct += (logits.argmax(dim=-1) == y).sum().item()
                total += len(y)
    finally:
        model.train(was_training)
    return correct / total
