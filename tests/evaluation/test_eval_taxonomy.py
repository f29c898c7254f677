"""The failure taxonomy as pure functions of the sandbox's error fields."""

from __future__ import annotations

from assay.evaluation.code_taxonomy import classify_error, embedded_exception, missing_import_name, worst_category


def err(ename, evalue, traceback=""):
    return {"ename": ename, "evalue": evalue, "traceback": traceback}


def test_syntax_errors_only_count_in_the_answer():
    for ename in ("SyntaxError", "IndentationError", "TabError"):
        assert classify_error(err(ename, "invalid syntax"), in_answer=True) == "syntax_error"
    assert classify_error(err("SyntaxError", "raised by compile() inside a test"), in_answer=False) == "runtime_error"


def test_name_error_for_a_module_is_a_missing_import():
    assert classify_error(err("NameError", "name 'torch' is not defined"), in_answer=True) == "missing_import"
    assert classify_error(err("NameError", "name 'F' is not defined"), in_answer=False) == "missing_import"
    assert classify_error(err("NameError", "name 'Optional' is not defined"), in_answer=True) == "missing_import"


def test_name_error_for_another_name_is_a_runtime_error():
    assert classify_error(err("NameError", "name 'helper' is not defined"), in_answer=True) == "runtime_error"
    assert classify_error(err("NameError", "name 'helper' is not defined"), in_answer=False) == "runtime_error"


def test_python_import_hint_counts_as_missing_import():
    hint = "name 'zlib' is not defined. Did you forget to import 'zlib'?"
    assert missing_import_name(f"NameError: {hint}") == "zlib"


def test_distributed_assertion_carrying_a_name_error_is_a_missing_import():
    message = (
        'rank 0 failed:\nTraceback (most recent call last):\n  File "<ipython>", line 3, in body\n'
        "    dist.all_reduce(t)\nNameError: name 'dist' is not defined\n"
    )
    assert classify_error(err("AssertionError", message), in_answer=False) == "missing_import"


def test_assertion_embedding_a_crash_is_a_runtime_error():
    message = (
        'rank 1 failed:\nTraceback (most recent call last):\n  File "x", line 1, in body\n'
        "    f(t)\nTypeError: f() takes 0 positional arguments but 1 was given\n"
    )
    assert embedded_exception(message) == "TypeError"
    assert classify_error(err("AssertionError", message), in_answer=False) == "runtime_error"


def test_assertion_embedding_an_assertion_is_a_wrong_answer():
    message = (
        'rank 1 failed:\nTraceback (most recent call last):\n  File "x", line 1\n    assert a == b\nAssertionError\n'
    )
    assert classify_error(err("AssertionError", message), in_answer=False) == "wrong_answer"


def test_plain_assertion_is_a_wrong_answer_and_other_exceptions_runtime_errors():
    assert classify_error(err("AssertionError", "expected 4, got 5"), in_answer=False) == "wrong_answer"
    assert classify_error(err("ValueError", "bad shape"), in_answer=False) == "runtime_error"
    assert classify_error(err("ValueError", "bad shape"), in_answer=True) == "runtime_error"
    assert classify_error(err("SandboxKilled", "memory limit"), in_answer=True) == "runtime_error"


def test_name_error_found_in_a_traceback_list():
    error = {
        "ename": "AttributeError",
        "evalue": "x",
        "traceback": ["Traceback", "NameError: name 'np' is not defined", "During handling..."],
    }
    assert classify_error(error, in_answer=False) == "missing_import"


def test_worst_category_priority():
    assert worst_category(["wrong_answer", "runtime_error", "missing_import"]) == "missing_import"
    assert worst_category(["wrong_answer", "runtime_error"]) == "runtime_error"
    assert worst_category(["wrong_answer", "wrong_answer"]) == "wrong_answer"
    assert worst_category([]) is None
