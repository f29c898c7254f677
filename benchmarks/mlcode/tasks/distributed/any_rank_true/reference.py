import torch
import torch.distributed as dist


def any_rank_true(flag: bool) -> bool:
    t = torch.tensor([1 if flag else 0], dtype=torch.int64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())
