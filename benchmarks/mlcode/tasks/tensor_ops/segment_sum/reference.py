import torch


def segment_sum(values: torch.Tensor, segment_ids: torch.Tensor, num_segments: int) -> torch.Tensor:
    out = values.new_zeros((num_segments,) + tuple(values.shape[1:]))
    return out.index_add(0, segment_ids, values)
