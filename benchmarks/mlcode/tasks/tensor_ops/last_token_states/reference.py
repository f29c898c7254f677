import torch


def last_token_states(hidden, attention_mask):
    mask = attention_mask.bool()
    t = hidden.shape[1]
    positions = torch.arange(t, device=hidden.device).expand_as(mask)
    last = torch.where(mask, positions, torch.full_like(positions, -1)).max(dim=1).values
    picked = hidden[torch.arange(hidden.shape[0], device=hidden.device), last.clamp(min=0)]
    return torch.where((last >= 0).unsqueeze(-1), picked, torch.zeros_like(picked))
