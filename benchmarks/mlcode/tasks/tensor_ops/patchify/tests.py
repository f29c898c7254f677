import torch as _torch


def test_matches_definition():
    g = _torch.Generator().manual_seed(0)
    images = _torch.randn(2, 3, 4, 6, generator=g)
    p = 2
    out = patchify(images, p)
    assert out.shape == (2, 6, 12)
    for b in range(2):
        for r in range(2):
            for c in range(3):
                n = r * 3 + c
                for ch in range(3):
                    for i in range(p):
                        for j in range(p):
                            assert out[b, n, ch * p * p + i * p + j] == images[b, ch, r * p + i, c * p + j]


def test_single_pixel_patches_and_whole_image():
    images = _torch.arange(2 * 3 * 3, dtype=_torch.float32).reshape(1, 2, 3, 3)
    out = patchify(images, 1)
    assert out.shape == (1, 9, 2)
    assert out[0, 4].tolist() == [4.0, 13.0]
    whole = patchify(images, 3)
    assert whole.shape == (1, 1, 18) and whole[0, 0].tolist() == list(range(18))


def test_indivisible_raises():
    try:
        patchify(_torch.zeros(1, 1, 4, 5), 2)
    except ValueError:
        return
    raise AssertionError("expected ValueError")
