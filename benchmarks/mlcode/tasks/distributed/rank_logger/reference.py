import logging

import torch.distributed as dist


class _RankFilter(logging.Filter):
    def __init__(self, enabled):
        super().__init__()
        self.enabled = enabled

    def filter(self, record):
        return self.enabled


def get_rank_logger(name, stream, all_ranks=False):
    rank, world = dist.get_rank(), dist.get_world_size()
    logger = logging.getLogger(name)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(f"[rank {rank}/{world}] %(levelname)s: %(message)s"))
    handler.addFilter(_RankFilter(all_ranks or rank == 0))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger
