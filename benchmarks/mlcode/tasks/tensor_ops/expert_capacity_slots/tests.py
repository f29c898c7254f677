import torch as _torch


def _expected(expert_ids, num_experts, capacity):
    n, k = expert_ids.shape
    slots = _torch.full((n, k), -1, dtype=_torch.long)
    used = [0] * num_experts
    for choice in range(k):
        for i in range(n):
            e = int(expert_ids[i, choice])
            if used[e] < capacity:
                slots[i, choice] = used[e]
                used[e] += 1
    return slots, _torch.tensor(used, dtype=_torch.long)


def test_prompt_example():
    slots, counts = expert_capacity_slots(_torch.tensor([[0, 1], [0, 0], [1, 0]]), 2, 2)
    assert slots.tolist() == [[0, 1], [1, -1], [0, -1]]
    assert counts.tolist() == [2, 2]
    assert slots.dtype == _torch.long and counts.dtype == _torch.long


def test_random_routing_against_loop():
    g = _torch.Generator().manual_seed(0)
    for n, k, e, cap in [(16, 2, 4, 5), (9, 1, 3, 2), (20, 3, 5, 100), (7, 2, 2, 0)]:
        ids = _torch.randint(0, e, (n, k), generator=g)
        slots, counts = expert_capacity_slots(ids, e, cap)
        exp_slots, exp_counts = _expected(ids, e, cap)
        assert slots.shape == (n, k) and counts.shape == (e,)
        assert _torch.equal(slots, exp_slots), (n, k, e, cap)
        assert _torch.equal(counts, exp_counts), (n, k, e, cap)


def test_unused_expert_has_zero_count():
    slots, counts = expert_capacity_slots(_torch.tensor([[2], [2], [2]]), 4, 2)
    assert slots.tolist() == [[0], [1], [-1]]
    assert counts.tolist() == [0, 0, 2, 0]
