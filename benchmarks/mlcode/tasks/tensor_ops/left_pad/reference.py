import torch


def left_pad(sequences, pad_value):
    length = max(len(s) for s in sequences)
    input_ids = torch.full((len(sequences), length), pad_value, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), length), dtype=torch.long)
    for row, seq in enumerate(sequences):
        n = len(seq)
        if n:
            input_ids[row, length - n :] = seq
            attention_mask[row, length - n :] = 1
    return input_ids, attention_mask
