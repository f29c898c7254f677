import torch as _torch


def _count_forwards(model):
    # counted at each block's first layer: a recomputation may stop once it has what backward needs
    counts = [0] * len(model.blocks)
    for i, block in enumerate(model.blocks):
        block[0].register_forward_pre_hook(lambda m, inp, i=i: counts.__setitem__(i, counts[i] + 1))
    return counts


def test_structure():
    model = CheckpointedMLP(4, 8, 3)
    assert model.use_checkpoint is True and len(model.blocks) == 3
    assert tuple(model.blocks[2][0].weight.shape) == (8, 4) and tuple(model.blocks[2][2].weight.shape) == (4, 8)


def test_same_outputs_and_gradients():
    _torch.manual_seed(0)
    model = CheckpointedMLP(6, 12, 3).train()
    x = _torch.randn(5, 6, requires_grad=True)
    out = model(x)
    out.pow(2).sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    gx = x.grad.clone()
    model.zero_grad()
    x.grad = None
    model.use_checkpoint = False
    ref = model(x)
    ref.pow(2).sum().backward()
    _torch.testing.assert_close(out, ref)
    _torch.testing.assert_close(x.grad, gx)
    for p, g in zip(model.parameters(), grads):
        _torch.testing.assert_close(p.grad, g)
    x_plain = x.detach()
    expected = x_plain
    for block in model.blocks:
        expected = expected + block(expected)
    _torch.testing.assert_close(ref, expected)


def test_recomputes_only_when_training_with_grad():
    _torch.manual_seed(1)
    model = CheckpointedMLP(4, 8, 2).train()
    counts = _count_forwards(model)
    model(_torch.randn(3, 4)).sum().backward()
    assert counts == [2, 2]
    counts[:] = [0, 0]
    model.use_checkpoint = False
    model(_torch.randn(3, 4)).sum().backward()
    assert counts == [1, 1]
    counts[:] = [0, 0]
    model.use_checkpoint = True
    model.eval()
    model(_torch.randn(3, 4, requires_grad=True)).sum().backward()
    assert counts == [1, 1]
