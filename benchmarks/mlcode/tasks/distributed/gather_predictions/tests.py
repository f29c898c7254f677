def test_merge_dedup_sort():
    def body(rank, world_size):
        if rank == 0:
            records = [{"id": 4, "pred": "a", "rank": 0}, {"id": 0, "pred": "b", "rank": 0}, {"id": 4, "pred": "x", "rank": 0}]
        else:
            records = [{"id": 1, "pred": "c", "rank": 1}, {"id": 0, "pred": "dup", "rank": 1}, {"id": 9, "pred": "d", "rank": 1}]
        return gather_predictions(records)

    expected = [
        {"id": 0, "pred": "b", "rank": 0},
        {"id": 1, "pred": "c", "rank": 1},
        {"id": 4, "pred": "a", "rank": 0},
        {"id": 9, "pred": "d", "rank": 1},
    ]
    assert _mlc_run_ranks(body) == [expected, expected]


def test_empty_rank():
    def body(rank, world_size):
        return gather_predictions([] if rank == 0 else [{"id": 3, "score": 0.5}])

    assert _mlc_run_ranks(body) == [[{"id": 3, "score": 0.5}]] * 2
