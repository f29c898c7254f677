"""The follower that shows a local job's output live: progress kept, submitit's own lines and failure report left out."""

from assay.pipeline.log_follow import LogFollower


def run_follower(out, err, capsys):
    LogFollower(out, err).poll()
    captured = capsys.readouterr()
    return captured.out, captured.err


def test_output_is_copied_without_submitits_bookkeeping(tmp_path, capsys):
    out, err = tmp_path / "0_log.out", tmp_path / "0_log.err"
    out.write_text(
        "submitit INFO (2026-12-01) - Starting with JobEnvironment(...)\n[assay] job: running x\n"
        "generate:  50%|#####     | 1/2\rgenerate: 100%|##########| 2/2\n"
    )
    err.write_text("a warning of the stage\n")
    shown_out, shown_err = run_follower(out, err, capsys)
    assert shown_out == "[assay] job: running x\ngenerate:  50%|#####     | 1/2\rgenerate: 100%|##########| 2/2\n"
    assert shown_err == "a warning of the stage\n"


def test_submitits_failure_report_is_left_out_but_the_stages_own_error_is_shown(tmp_path, capsys):
    out, err = tmp_path / "0_log.out", tmp_path / "0_log.err"
    out.write_text("preflight: refusing to train\n")
    err.write_text(
        'Traceback (most recent call last):\n  File "stage.py", line 1\nValueError: the stage\'s own error\n'
        "submitit ERROR (2026-12-01) - Submitted job triggered an exception\n"
        'Traceback (most recent call last):\n  File "submitit/core/_submit.py", line 11\n'
        "assay.pipeline.job_runner.CommandFailedError: x: command exited with status 4\n"
    )
    shown_out, shown_err = run_follower(out, err, capsys)
    assert shown_out == "preflight: refusing to train\n"
    assert shown_err == (
        'Traceback (most recent call last):\n  File "stage.py", line 1\nValueError: the stage\'s own error\n'
    )


def test_lines_written_between_polls_arrive_once_and_whole(tmp_path, capsys):
    out, err = tmp_path / "0_log.out", tmp_path / "0_log.err"
    follower = LogFollower(out, err)
    out.write_text("first line\nsecond, unfin")
    follower.poll()
    with out.open("a") as f:
        f.write("ished\n")
    follower.poll()
    follower.poll()
    assert capsys.readouterr().out == "first line\nsecond, unfinished\n"
