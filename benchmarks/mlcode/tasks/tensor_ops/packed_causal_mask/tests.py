import torch as _torch


def test_example():
    mask = packed_causal_mask(_torch.tensor([[0, 0, 1, 1, 1]]))
    assert mask.dtype == _torch.bool and mask.shape == (1, 5, 5)
    assert mask[0].int().tolist() == [
        [1, 0, 0, 0, 0],
        [1, 1, 0, 0, 0],
        [0, 0, 1, 0, 0],
        [0, 0, 1, 1, 0],
        [0, 0, 1, 1, 1],
    ]


def test_matches_definition_random_ids():
    g = _torch.Generator().manual_seed(0)
    ids = _torch.randint(0, 3, (3, 7), generator=g)
    mask = packed_causal_mask(ids)
    for b in range(3):
        for i in range(7):
            for j in range(7):
                assert bool(mask[b, i, j]) == (j <= i and int(ids[b, i]) == int(ids[b, j]))
