_CASES = [(False, False), (True, False), (False, True), (True, True)]


def test_all_combinations():
    def body(rank, world_size):
        return [any_rank_true(case[rank]) for case in _CASES]

    results = _mlc_run_ranks(body)
    for rank_results in results:
        assert rank_results == [False, True, True, True]
        assert all(type(v) is bool for v in rank_results)


def test_repeated_calls_stay_in_step():
    def body(rank, world_size):
        return [any_rank_true(step == 7 and rank == 1) for step in range(10)]

    for rank_results in _mlc_run_ranks(body):
        assert rank_results == [step == 7 for step in range(10)]
