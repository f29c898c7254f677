import torch as _torch


def test_right_left_and_holes():
    hidden = _torch.arange(4 * 5 * 2, dtype=_torch.float32).reshape(4, 5, 2)
    mask = _torch.tensor([[1, 1, 1, 0, 0], [0, 0, 1, 1, 1], [1, 1, 0, 1, 0], [1, 0, 0, 0, 0]])
    out = last_token_states(hidden, mask)
    assert out.shape == (4, 2)
    for b, t in enumerate([2, 4, 3, 0]):
        assert _torch.equal(out[b], hidden[b, t])


def test_bool_mask_and_empty_row():
    g = _torch.Generator().manual_seed(0)
    hidden = _torch.randn(3, 4, 6, generator=g)
    mask = _torch.tensor([[True, True, False, False], [False] * 4, [True] * 4])
    out = last_token_states(hidden, mask)
    assert _torch.equal(out[0], hidden[0, 1])
    assert _torch.equal(out[1], _torch.zeros(6))
    assert _torch.equal(out[2], hidden[2, 3])


def test_gradient_reaches_only_the_picked_states():
    hidden = _torch.zeros(2, 3, 2, requires_grad=True)
    mask = _torch.tensor([[1, 1, 0], [0, 1, 1]])
    last_token_states(hidden, mask).sum().backward()
    assert hidden.grad[:, :, 0].tolist() == [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
