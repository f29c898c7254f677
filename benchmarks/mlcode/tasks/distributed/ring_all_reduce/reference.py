import torch
import torch.distributed as dist


def ring_all_reduce(tensor: torch.Tensor) -> torch.Tensor:
    world, rank = dist.get_world_size(), dist.get_rank()
    if world == 1:
        return tensor
    chunks = list(tensor.tensor_split(world))  # views into tensor
    right, left = (rank + 1) % world, (rank - 1) % world

    def exchange(send_idx, recv_idx):
        buf = torch.empty_like(chunks[recv_idx])
        request = dist.isend(chunks[send_idx].clone(), right)
        dist.recv(buf, left)
        request.wait()
        return buf

    for step in range(world - 1):  # reduce-scatter
        recv_idx = (rank - step - 1) % world
        chunks[recv_idx] += exchange((rank - step) % world, recv_idx)
    for step in range(world - 1):  # all-gather
        recv_idx = (rank - step) % world
        chunks[recv_idx].copy_(exchange((rank + 1 - step) % world, recv_idx))
    return tensor
