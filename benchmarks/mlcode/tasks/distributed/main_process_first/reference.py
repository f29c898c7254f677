import contextlib

import torch.distributed as dist


@contextlib.contextmanager
def main_process_first():
    is_main = dist.get_rank() == 0
    if not is_main:
        dist.barrier()  # wait for rank 0's body
    try:
        yield
    finally:
        if is_main:
            dist.barrier()  # release the others
        dist.barrier()  # everybody done
