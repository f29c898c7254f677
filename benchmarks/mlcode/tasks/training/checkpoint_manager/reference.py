import os
import re

import torch

_PATTERN = re.compile(r"^ckpt_(\d{8})\.pt$")


class CheckpointManager:
    def __init__(self, directory, keep_last=2):
        self.directory = directory
        self.keep_last = keep_last

    def _path(self, step):
        return os.path.join(self.directory, f"ckpt_{step:08d}.pt")

    def _steps(self):
        if not os.path.isdir(self.directory):
            return []
        return sorted(int(m.group(1)) for m in map(_PATTERN.match, os.listdir(self.directory)) if m)

    def save(self, step, model, optimizer, scheduler=None):
        os.makedirs(self.directory, exist_ok=True)
        state = {
            "step": int(step),
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "rng": torch.get_rng_state(),
        }
        if scheduler is not None:
            state["scheduler"] = scheduler.state_dict()
        tmp = self._path(step) + ".tmp"
        torch.save(state, tmp)
        os.replace(tmp, self._path(step))
        for old in self._steps()[: -self.keep_last] if self.keep_last > 0 else []:
            os.remove(self._path(old))

    def latest_step(self):
        steps = self._steps()
        return steps[-1] if steps else None

    def load(self, model, optimizer, scheduler=None, step=None):
        if step is None:
            step = self.latest_step()
        if step is None or not os.path.exists(self._path(step)):
            raise FileNotFoundError(f"no checkpoint for step {step} in {self.directory}")
        state = torch.load(self._path(step), weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        return int(state["step"])
