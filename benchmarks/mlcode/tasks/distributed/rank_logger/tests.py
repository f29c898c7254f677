import io as _io


def test_only_rank_zero_writes():
    def body(rank, world_size):
        stream = _io.StringIO()
        logger = get_rank_logger("mlcode.train", stream)
        logger.info("step %d loss %.2f", 10, 1.5)
        logger.debug("hidden")
        logger.warning("careful")
        return stream.getvalue(), logger.propagate, len(logger.handlers)

    (out0, prop0, n0), (out1, prop1, n1) = _mlc_run_ranks(body)
    assert out0 == "[rank 0/2] INFO: step 10 loss 1.50\n[rank 0/2] WARNING: careful\n"
    assert out1 == ""
    assert prop0 is False and prop1 is False and n0 == n1 == 1


def test_all_ranks_and_reconfiguration():
    def body(rank, world_size):
        first = _io.StringIO()
        get_rank_logger("mlcode.eval", first).info("one")
        second = _io.StringIO()
        logger = get_rank_logger("mlcode.eval", second, all_ranks=True)
        logger.error("two")
        return first.getvalue(), second.getvalue(), len(logger.handlers)

    (f0, s0, n0), (f1, s1, n1) = _mlc_run_ranks(body)
    assert f0 == "[rank 0/2] INFO: one\n" and f1 == ""
    assert s0 == "[rank 0/2] ERROR: two\n" and s1 == "[rank 1/2] ERROR: two\n"
    assert n0 == n1 == 1
