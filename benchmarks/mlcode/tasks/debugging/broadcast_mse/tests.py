import torch as _torch


def test_shapes_combinations():
    pred = _torch.tensor([[1.0], [2.0], [4.0]])
    target = _torch.tensor([1.0, 3.0, 1.0])
    for p, t in [(pred, target), (pred, target[:, None]), (pred[:, 0], target), (pred[:, 0], target[:, None])]:
        loss = regression_loss(p, t)
        assert loss.dim() == 0
        assert abs(loss.item() - (0 + 1 + 9) / 3) < 1e-6


def test_gradient():
    pred = _torch.tensor([[2.0], [0.0]], requires_grad=True)
    regression_loss(pred, _torch.tensor([1.0, 1.0])).backward()
    assert pred.grad[:, 0].tolist() == [1.0, -1.0]
