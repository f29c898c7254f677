import torch as _torch


def test_mean_and_input_untouched():
    def body(rank, world_size):
        t = _torch.tensor([[1.0, 2.0], [3.0, 4.0]]) * (rank + 1)
        before = t.clone()
        out = all_reduce_mean(t)
        return out.tolist(), _torch.equal(t, before), out is t

    results = _mlc_run_ranks(body)
    for out, untouched, same_object in results:
        assert out == [[1.5, 3.0], [4.5, 6.0]]
        assert untouched and not same_object


def test_float64_keeps_dtype():
    def body(rank, world_size):
        t = _torch.full((3,), 0.1 * (rank + 1), dtype=_torch.float64)
        out = all_reduce_mean(t)
        return str(out.dtype), out.tolist()

    for dtype, values in _mlc_run_ranks(body):
        assert dtype == "torch.float64"
        assert all(abs(v - 0.15) < 1e-12 for v in values)
