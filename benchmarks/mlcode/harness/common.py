# mlcode harness "common": prepended by the builder to the tests of every task.
# One intra-op thread: the tests' tensors are small, and several OpenMP threads that spin-wait on a
# shared or CPU-limited machine can make them 10-20x slower (seen on 2 busy cores). It also steadies
# the timings of the performance tasks.
import torch as _torch

_torch.set_num_threads(1)
