import torch
import torch.nn.functional as F


def expert_capacity_slots(expert_ids, num_experts, capacity):
    n, k = expert_ids.shape
    flat = expert_ids.t().reshape(-1)  # priority order: choice-major, then token order
    one_hot = F.one_hot(flat, num_experts)
    position = one_hot.cumsum(dim=0) - 1
    slot = position.gather(1, flat.unsqueeze(1)).squeeze(1)
    slot = torch.where(slot < capacity, slot, torch.full_like(slot, -1))
    counts = one_hot.sum(dim=0).clamp(max=capacity)
    return slot.view(k, n).t().contiguous(), counts.long()
