import torch


class EMA:
    def __init__(self, model, decay):
        self.decay = decay
        self.shadow = {name: p.detach().clone() for name, p in model.named_parameters()}

    @torch.no_grad()
    def update(self, model):
        for name, p in model.named_parameters():
            self.shadow[name].mul_(self.decay).add_(p.detach(), alpha=1 - self.decay)

    @torch.no_grad()
    def copy_to(self, model):
        for name, p in model.named_parameters():
            p.copy_(self.shadow[name])

    def state_dict(self):
        return {name: t.clone() for name, t in self.shadow.items()}

    def load_state_dict(self, state):
        self.shadow = {name: t.detach().clone() for name, t in state.items()}
