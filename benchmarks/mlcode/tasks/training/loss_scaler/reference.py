import torch


class DynamicLossScaler:
    def __init__(self, init_scale=2.0**16, growth_factor=2.0, backoff_factor=0.5, growth_interval=2000):
        self._scale = float(init_scale)
        self.growth_factor = growth_factor
        self.backoff_factor = backoff_factor
        self.growth_interval = growth_interval
        self._good_steps = 0

    def scale(self, loss):
        return loss * self._scale

    def get_scale(self):
        return self._scale

    def step(self, optimizer):
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        if any(not bool(torch.isfinite(g).all()) for g in grads):
            self._scale *= self.backoff_factor
            self._good_steps = 0
            return False
        with torch.no_grad():
            for g in grads:
                g.div_(self._scale)
        optimizer.step()
        self._good_steps += 1
        if self._good_steps >= self.growth_interval:
            self._scale *= self.growth_factor
            self._good_steps = 0
        return True
