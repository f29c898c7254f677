import torch
import torch.distributed as dist


class ShardedSampler:
    def __init__(self, dataset_len, shuffle=True, seed=0, drop_last=False, num_replicas=None, rank=None):
        self.dataset_len = dataset_len
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.num_replicas = dist.get_world_size() if num_replicas is None else num_replicas
        self.rank = dist.get_rank() if rank is None else rank
        self.epoch = 0
        if drop_last:
            self.total = (dataset_len // self.num_replicas) * self.num_replicas
        else:
            self.total = -(-dataset_len // self.num_replicas) * self.num_replicas

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __iter__(self):
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed + self.epoch)
            indices = torch.randperm(self.dataset_len, generator=g).tolist()
        else:
            indices = list(range(self.dataset_len))
        if len(indices) < self.total and indices:
            repeats = -(-(self.total - len(indices)) // len(indices))
            indices = indices + (indices * repeats)[: self.total - len(indices)]
        indices = indices[: self.total]
        return iter(indices[self.rank :: self.num_replicas])

    def __len__(self):
        return self.total // self.num_replicas
