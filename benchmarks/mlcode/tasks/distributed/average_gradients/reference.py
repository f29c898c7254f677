import torch
import torch.distributed as dist


@torch.no_grad()
def average_gradients(model):
    world = dist.get_world_size()
    for param in model.parameters():
        if param.requires_grad and param.grad is not None:
            dist.all_reduce(param.grad, op=dist.ReduceOp.SUM)
            param.grad.div_(world)
