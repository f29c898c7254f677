import torch


def banned_next_tokens(tokens, n, vocab_size):
    b, t = tokens.shape
    banned = torch.zeros(b, vocab_size, dtype=torch.bool)
    if t < n:
        return banned
    windows = tokens.unfold(1, n, 1)  # (B, T - n + 1, n)
    prefix = tokens[:, t - n + 1 :]  # (B, n - 1)
    match = (windows[..., : n - 1] == prefix[:, None, :]).all(dim=-1)
    rows = torch.arange(b)[:, None].expand_as(match)
    banned[rows[match], windows[..., n - 1][match]] = True
    return banned
