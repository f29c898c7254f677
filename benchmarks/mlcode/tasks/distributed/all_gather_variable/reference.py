import torch
import torch.distributed as dist


def all_gather_variable(tensor):
    world = dist.get_world_size()
    length = torch.tensor([tensor.numel()], dtype=torch.int64)
    lengths = [torch.zeros_like(length) for _ in range(world)]
    dist.all_gather(lengths, length)
    lengths = [int(n.item()) for n in lengths]
    longest = max(max(lengths), 1)
    padded = torch.zeros(longest, dtype=tensor.dtype)
    padded[: tensor.numel()] = tensor
    gathered = [torch.zeros_like(padded) for _ in range(world)]
    dist.all_gather(gathered, padded)
    return [g[:n].clone() for g, n in zip(gathered, lengths)]
