import json as _json
import os as _os
import tempfile as _tempfile
import time as _time

import torch as _torch


def _state():
    g = _torch.Generator().manual_seed(0)
    names = ["layers.1.weight", "embed.weight", "layers.0.bias", "head.weight", "layers.0.weight"]
    return {n: _torch.randn(3, 2, generator=g) for n in names}


def test_shards_index_and_sync():
    with _tempfile.TemporaryDirectory() as tmp:
        directory = _os.path.join(tmp, "ckpt", "step_10")

        def body(rank, world_size):
            if rank == 1:
                _time.sleep(0.5)  # rank 0 must wait for this rank's shard before returning
            result = save_sharded(_state(), directory)
            files = sorted(_os.listdir(directory))
            return result, files

        for result, files in _mlc_run_ranks(body):
            assert result is None
            assert files == ["index.json", "shard_0.pt", "shard_1.pt"]
        shards = [_torch.load(_os.path.join(directory, f"shard_{r}.pt"), weights_only=True) for r in range(2)]
        with open(_os.path.join(directory, "index.json")) as f:
            index = _json.load(f)
    names = sorted(_state())
    assert sorted(shards[0]) == names[0::2] and sorted(shards[1]) == names[1::2]
    assert index == {n: f"shard_{i % 2}.pt" for i, n in enumerate(names)}
    for shard in shards:
        for name, tensor in shard.items():
            assert _torch.equal(tensor, _state()[name])


def test_single_entry_leaves_rank_one_empty():
    with _tempfile.TemporaryDirectory() as tmp:
        def body(rank, world_size):
            save_sharded({"w": _torch.ones(2)}, tmp)
            return sorted(_os.listdir(tmp))

        _mlc_run_ranks(body)
        shard1 = _torch.load(_os.path.join(tmp, "shard_1.pt"), weights_only=True)
        shard0 = _torch.load(_os.path.join(tmp, "shard_0.pt"), weights_only=True)
    assert shard1 == {} and list(shard0) == ["w"]
