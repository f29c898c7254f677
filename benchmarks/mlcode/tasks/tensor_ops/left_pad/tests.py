import torch as _torch


def test_example():
    seqs = [_torch.tensor([5, 6, 7]), _torch.tensor([8]), _torch.tensor([], dtype=_torch.long)]
    ids, mask = left_pad(seqs, 0)
    assert ids.dtype == _torch.long and mask.dtype == _torch.long
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8], [0, 0, 0]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1], [0, 0, 0]]


def test_random_lengths_and_pad_value():
    g = _torch.Generator().manual_seed(0)
    seqs = [_torch.randint(1, 50, (n,), generator=g) for n in (4, 9, 1, 9, 6)]
    ids, mask = left_pad(seqs, -1)
    assert ids.shape == (5, 9) and mask.shape == (5, 9)
    for row, seq in enumerate(seqs):
        n = len(seq)
        assert ids[row, 9 - n :].tolist() == seq.tolist()
        assert ids[row, : 9 - n].tolist() == [-1] * (9 - n)
        assert mask[row].tolist() == [0] * (9 - n) + [1] * n


def test_all_empty():
    ids, mask = left_pad([_torch.tensor([], dtype=_torch.long)] * 2, 3)
    assert ids.shape == (2, 0) and mask.shape == (2, 0)
