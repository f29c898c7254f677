import torch
import torch.distributed as dist


def bucketed_all_reduce(tensors, bucket_cap):
    buckets, current, size = [], [], 0
    for t in tensors:
        if current and size + t.numel() > bucket_cap:
            buckets.append(current)
            current, size = [], 0
        current.append(t)
        size += t.numel()
    if current:
        buckets.append(current)
    for bucket in buckets:
        flat = torch.cat([t.reshape(-1) for t in bucket])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        offset = 0
        for t in bucket:
            t.copy_(flat[offset : offset + t.numel()].view_as(t))
            offset += t.numel()
    return len(buckets)
