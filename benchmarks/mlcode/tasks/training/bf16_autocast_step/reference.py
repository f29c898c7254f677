import torch


def bf16_train_step(model, optimizer, x, y, loss_fn):
    optimizer.zero_grad()
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        outputs = model(x)
    loss = loss_fn(outputs.float(), y)
    loss.backward()
    optimizer.step()
    return loss.item()
