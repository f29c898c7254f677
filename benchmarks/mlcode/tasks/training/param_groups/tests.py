import torch as _torch
import torch.nn as _nn


class _TinyLM(_nn.Module):
    def __init__(self):
        super().__init__()
        self.head = _nn.Linear(8, 20, bias=False)  # registered first: the tied weight is first seen here
        self.embed = _nn.Embedding(20, 8)
        self.head.weight = self.embed.weight
        self.block = _nn.Sequential(_nn.Linear(8, 16), _nn.GELU(), _nn.Linear(16, 8))
        self.norm = _nn.LayerNorm(8)
        self.frozen = _nn.Linear(8, 8)
        self.frozen.requires_grad_(False)
        self.pos = _nn.Parameter(_torch.zeros(4, 8))


def _ids(params):
    return [id(p) for p in params]


def test_groups():
    model = _TinyLM()
    groups = build_param_groups(model, 0.1)
    assert len(groups) == 2
    assert groups[0]["weight_decay"] == 0.1 and groups[1]["weight_decay"] == 0.0
    assert _ids(groups[0]["params"]) == _ids([model.pos, model.block[0].weight, model.block[2].weight])
    assert _ids(groups[1]["params"]) == _ids(
        [model.embed.weight, model.block[0].bias, model.block[2].bias, model.norm.weight, model.norm.bias]
    )


def test_usable_by_adamw():
    _torch.manual_seed(0)
    model = _TinyLM()
    opt = _torch.optim.AdamW(build_param_groups(model, 0.5), lr=0.1)
    before = model.norm.bias.detach().clone()
    opt.step()  # no gradients yet: nothing changes
    assert _torch.equal(model.norm.bias, before)
