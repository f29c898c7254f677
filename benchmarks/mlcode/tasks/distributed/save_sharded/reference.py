import json
import os

import torch
import torch.distributed as dist


def save_sharded(state, directory):
    rank, world = dist.get_rank(), dist.get_world_size()
    os.makedirs(directory, exist_ok=True)
    names = sorted(state)
    owner = {name: i % world for i, name in enumerate(names)}
    mine = {name: state[name] for name in names if owner[name] == rank}
    torch.save(mine, os.path.join(directory, f"shard_{rank}.pt"))
    if rank == 0:
        index = {name: f"shard_{owner[name]}.pt" for name in names}
        with open(os.path.join(directory, "index.json"), "w") as f:
            json.dump(index, f)
    dist.barrier()
