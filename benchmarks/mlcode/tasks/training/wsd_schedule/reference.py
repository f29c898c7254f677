import math


def wsd_lr(step, peak_lr, warmup_steps, stable_steps, decay_steps, final_lr):
    if step < warmup_steps:
        return peak_lr * (step + 1) / warmup_steps
    step -= warmup_steps
    if step < stable_steps:
        return float(peak_lr)
    step -= stable_steps
    if step < decay_steps:
        return peak_lr + (final_lr - peak_lr) * math.sqrt((step + 1) / decay_steps)
    return float(final_lr)
