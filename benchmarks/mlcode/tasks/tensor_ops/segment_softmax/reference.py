import torch


def segment_softmax(scores, segment_ids, num_segments):
    maxes = torch.full((num_segments,), float("-inf"), dtype=scores.dtype, device=scores.device)
    maxes = maxes.scatter_reduce(0, segment_ids, scores.detach(), reduce="amax", include_self=True)
    shifted = (scores - maxes[segment_ids]).exp()
    denom = torch.zeros(num_segments, dtype=scores.dtype, device=scores.device).index_add(0, segment_ids, shifted)
    return shifted / denom[segment_ids]
