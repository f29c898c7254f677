import torch.distributed as dist


def broadcast_object(obj, src=0):
    box = [obj if dist.get_rank() == src else None]
    dist.broadcast_object_list(box, src=src)
    return box[0]
