import torch
import torch.nn.functional as F


def one_hot_with_ignore(labels, num_classes, ignore_index=-100):
    keep = labels != ignore_index
    out = F.one_hot(torch.where(keep, labels, torch.zeros_like(labels)), num_classes).to(torch.float32)
    return out * keep.unsqueeze(1)
