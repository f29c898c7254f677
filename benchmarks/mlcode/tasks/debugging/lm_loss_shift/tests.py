import torch as _torch


def _expected(logits, ids, pad):
    terms = []
    for b in range(ids.shape[0]):
        for t in range(ids.shape[1] - 1):
            target = int(ids[b, t + 1])
            if target != pad:
                terms.append(-_torch.log_softmax(logits[b, t].double(), -1)[target])
    return _torch.stack(terms).mean()


def test_shift_and_padding():
    g = _torch.Generator().manual_seed(0)
    logits = _torch.randn(3, 6, 10, generator=g)
    ids = _torch.randint(1, 10, (3, 6), generator=g)
    ids[0, 4:] = 0
    ids[2, 2:] = 0
    loss = lm_loss(logits, ids, 0)
    assert loss.dim() == 0
    _torch.testing.assert_close(loss.double(), _expected(logits, ids, 0), rtol=1e-5, atol=1e-6)


def test_copying_the_input_is_not_rewarded():
    ids = _torch.tensor([[3, 1, 4, 1, 5]])
    logits = _torch.full((1, 5, 6), -10.0)
    logits[0, _torch.arange(5), ids[0]] = 10.0  # predicts the CURRENT token: a bad LM
    assert lm_loss(logits, ids, pad_id=0).item() > 5.0
    good = _torch.full((1, 5, 6), -10.0, requires_grad=False)
    good[0, _torch.arange(4), ids[0, 1:]] = 10.0
    good.requires_grad_(True)
    loss = lm_loss(good, ids, pad_id=0)
    assert loss.item() < 1e-3
    loss.backward()
    assert (good.grad[0, 4] == 0).all()
