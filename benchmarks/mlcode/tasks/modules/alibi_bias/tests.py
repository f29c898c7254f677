import torch as _torch


def test_slopes():
    m = ALiBi(8)
    assert list(m.parameters()) == []
    assert m.slopes.dtype == _torch.float32
    _torch.testing.assert_close(m.slopes, _torch.tensor([2.0 ** (-(h + 1)) for h in range(8)]))
    _torch.testing.assert_close(ALiBi(2).slopes, _torch.tensor([2.0 ** -4, 2.0 ** -8]))


def test_bias_values():
    m = ALiBi(4)
    bias = m(5)
    assert bias.shape == (4, 5, 5) and bias.dtype == _torch.float32
    for h in range(4):
        slope = 2.0 ** (-8 * (h + 1) / 4)
        for i in range(5):
            for j in range(5):
                if j > i:
                    assert bias[h, i, j].item() == float("-inf")
                else:
                    assert abs(bias[h, i, j].item() + slope * (i - j)) < 1e-6


def test_rejects_non_power_of_two():
    for n in (3, 6, 12):
        try:
            ALiBi(n)
        except ValueError:
            continue
        raise AssertionError(f"expected ValueError for n_heads={n}")
