import torch as _torch


def test_small_example():
    mask = sliding_window_causal_mask(4, 2)
    assert mask.dtype == _torch.bool
    assert mask.int().tolist() == [[1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]]


def test_matches_definition():
    for seq_len, window in [(7, 1), (7, 3), (9, 5), (1, 1)]:
        mask = sliding_window_causal_mask(seq_len, window)
        assert mask.shape == (seq_len, seq_len)
        for i in range(seq_len):
            for j in range(seq_len):
                assert bool(mask[i, j]) == (j <= i and i - j < window)


def test_large_window_is_causal_and_empty_sequence():
    mask = sliding_window_causal_mask(6, 10)
    assert _torch.equal(mask, _torch.ones(6, 6, dtype=_torch.bool).tril())
    assert sliding_window_causal_mask(0, 3).shape == (0, 0)
