def test_from_rank_zero():
    def body(rank, world_size):
        obj = {"lr": 3e-4, "files": ["a.jsonl", "b.jsonl"], "nested": (1, None)} if rank == 0 else None
        return broadcast_object(obj)

    for got in _mlc_run_ranks(body):
        assert got == {"lr": 3e-4, "files": ["a.jsonl", "b.jsonl"], "nested": (1, None)}


def test_from_rank_one():
    def body(rank, world_size):
        return broadcast_object([rank] * 3 if rank == 1 else "ignored", src=1)

    assert _mlc_run_ranks(body) == [[1, 1, 1], [1, 1, 1]]
