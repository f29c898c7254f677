def test_unshuffled_examples():
    def body(rank, world_size):
        plain = ShardedSampler(5, shuffle=False)
        dropped = ShardedSampler(5, shuffle=False, drop_last=True)
        tiny = ShardedSampler(1, shuffle=False, num_replicas=4, rank=rank + 2)
        return list(plain), len(plain), list(dropped), len(dropped), list(tiny), len(tiny)

    r0, r1 = _mlc_run_ranks(body)
    assert r0 == ([0, 2, 4], 3, [0, 2], 2, [0], 1)
    assert r1 == ([1, 3, 0], 3, [1, 3], 2, [0], 1)


def test_shuffled_shards_partition_and_epochs():
    def body(rank, world_size):
        sampler = ShardedSampler(11, shuffle=True, seed=3)
        epochs = []
        for epoch in (0, 1, 0):
            sampler.set_epoch(epoch)
            epochs.append(list(sampler))
        again = ShardedSampler(11, shuffle=True, seed=3)
        other_seed = ShardedSampler(11, shuffle=True, seed=4)
        return epochs, list(again), list(other_seed), len(sampler)

    (e0, again0, seed0, n0), (e1, again1, seed1, n1) = _mlc_run_ranks(body)
    assert n0 == n1 == 6
    for epoch in range(3):
        assert len(e0[epoch]) == len(e1[epoch]) == 6
        assert all(isinstance(i, int) for i in e0[epoch] + e1[epoch])
        combined = e0[epoch] + e1[epoch]
        assert set(combined) == set(range(11)) and len(combined) == 12
    assert e0[0] == e0[2] and e1[0] == e1[2]
    assert (e0[0], e1[0]) != (e0[1], e1[1])
    assert again0 == e0[0] and again1 == e1[0]
    assert (seed0, seed1) != (e0[0], e1[0])
    interleaved = [i for pair in zip(e0[0], e1[0]) for i in pair]
    assert interleaved[:11] != list(range(11))  # shuffled
    assert interleaved[11] == interleaved[0]  # padded with the first element of the permutation


def test_drop_last_shuffled_is_disjoint():
    def body(rank, world_size):
        sampler = ShardedSampler(9, seed=0, drop_last=True)
        sampler.set_epoch(5)
        return list(sampler)

    a, b = _mlc_run_ranks(body)
    assert len(a) == len(b) == 4 and not set(a) & set(b)
