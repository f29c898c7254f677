import torch.distributed as dist


def gather_predictions(records):
    per_rank = [None] * dist.get_world_size()
    dist.all_gather_object(per_rank, list(records))
    merged = {}
    for rank_records in per_rank:
        for record in rank_records:
            merged.setdefault(record["id"], record)
    return [merged[i] for i in sorted(merged)]
