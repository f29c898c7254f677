import math


class EarlyStopping:
    def __init__(self, patience, min_delta=0.0, mode="min"):
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        self.patience = patience
        self.min_delta = min_delta
        self.mode = mode
        self.best = None
        self.num_bad_steps = 0

    def step(self, metric) -> bool:
        metric = float(metric)
        if math.isnan(metric):
            improved = False
        elif self.best is None:
            improved = True
        elif self.mode == "min":
            improved = metric < self.best - self.min_delta
        else:
            improved = metric > self.best + self.min_delta
        if improved:
            self.best = metric
            self.num_bad_steps = 0
        else:
            self.num_bad_steps += 1
        return self.num_bad_steps >= self.patience
