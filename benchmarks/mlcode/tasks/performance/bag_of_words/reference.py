import torch


def bag_of_words(token_ids, vocab_size, pad_id):
    counts = torch.zeros(token_ids.shape[0], vocab_size, dtype=torch.int64)
    counts.scatter_add_(1, token_ids, torch.ones_like(token_ids))
    if 0 <= pad_id < vocab_size:
        counts[:, pad_id] = 0
    return counts
