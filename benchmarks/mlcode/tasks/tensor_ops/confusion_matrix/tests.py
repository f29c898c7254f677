import torch as _torch


def test_matches_loop_with_ignored_positions():
    g = _torch.Generator().manual_seed(0)
    targets = _torch.randint(0, 4, (6, 9), generator=g)
    preds = _torch.randint(0, 4, (6, 9), generator=g)
    ignored = _torch.rand(6, 9, generator=g) < 0.3
    targets[ignored] = -100
    preds[ignored] = 77  # garbage where ignored
    cm = confusion_matrix(preds, targets, 4)
    assert cm.dtype == _torch.long and cm.shape == (4, 4)
    expected = _torch.zeros(4, 4, dtype=_torch.long)
    for t, p in zip(targets.flatten().tolist(), preds.flatten().tolist()):
        if t != -100:
            expected[t, p] += 1
    assert _torch.equal(cm, expected)


def test_orientation_and_custom_ignore_index():
    preds = _torch.tensor([1, 1, 2, 0])
    targets = _torch.tensor([0, 0, 2, -1])
    cm = confusion_matrix(preds, targets, 3, ignore_index=-1)
    assert cm.tolist() == [[0, 2, 0], [0, 0, 0], [0, 0, 1]]


def test_nothing_counted():
    cm = confusion_matrix(_torch.tensor([3, 3]), _torch.tensor([-100, -100]), 2)
    assert cm.tolist() == [[0, 0], [0, 0]]
