"""Self-checks of the mlcode tasks: the JSONL matches the folders, the schema holds, and every task's
tests accept its reference solution and reject a null answer and the reference without its imports,
run the way the grader runs them (answer, then tests, then a runner of the `test_*` functions, in one
fresh `__main__`). The buggy code a debugging prompt shows fails its tests; the loop version a
performance prompt shows passes every test but `test_speedup`. A sample, with every distributed task,
also runs in a real IPython kernel through jupyter_client.

The per-task runs go through one warm driver process (torch imported once) that forks a fresh child
per task, so the ~85 tasks cost seconds each, not an interpreter start and a torch import each.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import textwrap

import pytest

from assay.benchmarks.mlcode import build

RECORDS = build.build_records()
BY_ID = {record["id"]: record for record in RECORDS}
TASK_TIME_LIMIT_S = 20.0  # the grader's limit per task (issue 6)
KERNEL_SAMPLE = [r["id"] for r in RECORDS if r["category"] == "distributed"] + [
    "tensor_ops/segment_softmax",
    "modules/lora_linear",
    "training/checkpoint_manager",
    "training/bf16_autocast_step",
    "debugging/where_nan_grad",
    "performance/pairwise_sq_dists",
]


# ----------------------------------------------------------------------------- helpers


def _test_names(tests: str) -> list[str]:
    """What the grader's runner calls: top-level `test_*` functions, in definition order."""
    return [
        node.name
        for node in ast.parse(tests).body
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
    ]


def _prompt_body(record: dict) -> str:
    footer = build.ANSWER_FORMAT.format(entry_point=record["entry_point"])
    assert record["prompt"].endswith(footer)
    return record["prompt"][: -len(footer)]


def _null_answer(entry_point: str) -> str:
    return f"def {entry_point}(*args, **kwargs):\n    raise NotImplementedError\n"


def _without_imports(code: str) -> str:
    drop = set()
    for node in ast.parse(code).body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            drop.update(range(node.lineno, node.end_lineno + 1))
    return "".join(line for i, line in enumerate(code.splitlines(True), 1) if i not in drop)


def _prompt_code(record: dict) -> str:
    """The one code block a debugging prompt (the code to fix) or a performance prompt (the slow
    loop version, `<entry_point>_slow`) shows."""
    blocks = re.findall(r"```python\n(.*?)```", _prompt_body(record), flags=re.S)
    assert len(blocks) == 1, f"{record['id']}: the prompt must show exactly one python block"
    return blocks[0]


def _top_level_names(tree: ast.Module) -> list[str]:
    names = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names += [(a.asname or a.name).split(".")[0] for a in node.names]
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names += [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
    return names


# ----------------------------------------------------------------------------- the warm driver

_DRIVER = r"""
import builtins, json, os, select, shutil, signal, sys, tempfile, time, traceback, types
import torch  # imported and warmed once here; each task runs in a fresh fork
import torch._dynamo, torch.distributed, torch.nn.functional, torch.utils.checkpoint  # optimizers import _dynamo lazily
torch.testing.assert_close(torch.zeros(1), torch.zeros(1))  # its first call costs ~1 s of lazy imports

proto = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)


def run_variant(code, tests, names):
    module = types.ModuleType("__main__")
    sys.modules["__main__"] = module
    ns = module.__dict__
    ns["__builtins__"] = builtins
    out = {"code_error": None, "tests_error": None, "results": []}
    start = time.perf_counter()
    try:
        exec(compile(code, "<answer>", "exec"), ns)
    except BaseException:
        out["code_error"] = traceback.format_exc(limit=-3)
    try:
        exec(compile(tests, "<tests>", "exec"), ns)
    except BaseException:
        out["tests_error"] = traceback.format_exc(limit=-3)
    for name in names:
        try:
            ns[name]()
            out["results"].append([name, None])
        except BaseException:
            out["results"].append([name, traceback.format_exc(limit=-4)[-3000:]])
    out["seconds"] = time.perf_counter() - start
    return out


for line in sys.stdin:
    request = json.loads(line)
    workdir = tempfile.mkdtemp(prefix="mlcode-check-")
    log_path = os.path.join(workdir, "log.txt")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.setpgid(0, 0)
        try:
            os.chdir(workdir)
            fd = os.open(log_path, os.O_WRONLY | os.O_CREAT, 0o600)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            payload = {k: run_variant(code, request["tests"], request["names"])
                       for k, code in request["variants"].items()}
        except BaseException:
            payload = {"driver_error": traceback.format_exc()}
        with os.fdopen(w, "w") as f:
            f.write(json.dumps(payload))
        os._exit(0)
    os.close(w)
    chunks, deadline = [], time.monotonic() + request["timeout"]
    while True:
        ready, _, _ = select.select([r], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            os.killpg(pid, signal.SIGKILL)
            break
        chunk = os.read(r, 1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(r)
    os.waitpid(pid, 0)
    try:
        os.killpg(pid, signal.SIGKILL)  # leftovers of the task, if any
    except ProcessLookupError:
        pass
    try:
        response = json.loads(b"".join(chunks))
    except ValueError:
        response = {"driver_error": "no result within %s s" % request["timeout"]}
    with open(log_path, errors="replace") as f:
        response["log_tail"] = f.read()[-3000:]
    shutil.rmtree(workdir, ignore_errors=True)
    proto.write(json.dumps(response) + "\n")
    proto.flush()
"""


@pytest.fixture(scope="module")
def driver():
    proc = subprocess.Popen([sys.executable, "-c", _DRIVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def run(variants: dict[str, str], tests: str, timeout: float = 180.0) -> dict:
        request = {"variants": variants, "tests": tests, "names": _test_names(tests), "timeout": timeout}
        proc.stdin.write(json.dumps(request) + "\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
        assert line, "the driver process died"
        return json.loads(line)

    yield run
    proc.stdin.close()
    proc.wait(timeout=30)


def _failures(outcome: dict) -> list[str]:
    return [f"{name}: {err}" for name, err in outcome["results"] if err is not None]


# ----------------------------------------------------------------------------- the checks


def test_jsonl_in_sync_with_folders():
    assert build.JSONL_PATH.read_text() == build.render_jsonl(RECORDS), (
        "mlcode.jsonl is stale: run python -m assay.benchmarks.mlcode.build"
    )


def test_schema_and_counts():
    ids = [r["id"] for r in RECORDS]
    assert len(ids) == len(set(ids)) >= 80
    for category in build.CATEGORIES:
        assert sum(r["category"] == category for r in RECORDS) >= 10, category
    for record in RECORDS:
        assert list(record) == list(build.FIELDS)
        assert all(isinstance(record[f], str) and record[f] for f in build.FIELDS), record["id"]
        assert record["category"] in build.CATEGORIES and record["difficulty"] in build.DIFFICULTIES
        assert record["entry_point"].isidentifier()
        body, ep = _prompt_body(record), record["entry_point"]
        assert re.search(rf"`(class )?{ep}[(`]", body), f"{record['id']}: entry point not named in the prompt"


@pytest.mark.parametrize("task_id", sorted(BY_ID))
def test_sources_follow_the_contract(task_id):
    record = BY_ID[task_id]
    entry_point = record["entry_point"]
    assert entry_point in _top_level_names(ast.parse(record["reference_solution"]))
    tests_tree = ast.parse(record["tests"])
    names = _test_names(record["tests"])
    assert len(names) >= 2 and len(names) == len(set(names))
    # The tests bind nothing an answer could lean on (torch, F, np, ...) nor the entry point itself.
    public = [n for n in _top_level_names(tests_tree) if not n.startswith("_") and not n.startswith("test_")]
    assert not public, f"tests bind public names {public}; alias imports as _name"
    harness = {"distributed": "_mlc_run_ranks", "performance": "_mlc_speedup"}.get(record["category"])
    if harness:
        assert f"{harness}(" in record["tests"]
    if record["category"] == "debugging":
        assert entry_point in _top_level_names(ast.parse(_prompt_code(record)))
    if record["category"] == "performance":
        assert f"{entry_point}_slow" in _top_level_names(ast.parse(_prompt_code(record)))
        assert "test_speedup" in names


@pytest.mark.parametrize("task_id", sorted(BY_ID))
def test_reference_passes_and_wrong_answers_fail(task_id, driver):
    record = BY_ID[task_id]
    variants = {
        "reference": record["reference_solution"],
        "null": _null_answer(record["entry_point"]),
        "no_imports": _without_imports(record["reference_solution"]),
    }
    if record["category"] == "debugging":
        variants["buggy"] = _prompt_code(record)
    if record["category"] == "performance":  # the prompt's own loop version, under the entry point's name
        ep = record["entry_point"]
        variants["slow"] = f"{_prompt_code(record)}\n{ep} = {ep}_slow\n"
    out = driver(variants, record["tests"])
    assert "driver_error" not in out, out["driver_error"] + out["log_tail"]

    ref = out["reference"]
    assert ref["code_error"] is None and ref["tests_error"] is None, (ref, out["log_tail"])
    assert not _failures(ref), "\n".join(_failures(ref)) + out["log_tail"]
    assert ref["seconds"] < TASK_TIME_LIMIT_S, f"reference run took {ref['seconds']:.1f} s"

    null = out["null"]
    assert len(_failures(null)) == len(null["results"]), "a test passes the null answer"

    stripped = out["no_imports"]
    assert _failures(stripped), "the reference without imports passes"
    assert "NameError" in (stripped["code_error"] or "") + "".join(_failures(stripped))

    if "buggy" in out:
        assert _failures(out["buggy"]), "the buggy code shown in the prompt passes the tests"
    if "slow" in out:  # the prompt's loop version is correct, and too slow
        failed = [name for name, err in out["slow"]["results"] if err is not None]
        assert failed == ["test_speedup"], "\n".join(_failures(out["slow"]))


_RUNNER = """
def __mlcode_run(names):
    import json, traceback
    results = []
    for name in names:
        try:
            globals()[name]()
            results.append([name, None])
        except BaseException:
            results.append([name, traceback.format_exc()[-2000:]])
    print("__MLCODE__" + json.dumps(results))
__mlcode_run({names!r})
"""


@pytest.mark.parametrize("task_id", KERNEL_SAMPLE)
def test_reference_passes_in_ipython_kernel(task_id, tmp_path):
    from jupyter_client.manager import start_new_kernel

    record = BY_ID[task_id]
    names = _test_names(record["tests"])
    km, kc = start_new_kernel(kernel_name="python3", cwd=str(tmp_path))
    try:
        output: list[str] = []

        def hook(msg):
            if msg["msg_type"] == "stream":
                output.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                output.append("\n".join(msg["content"]["traceback"]))

        for source in (record["reference_solution"], record["tests"], _RUNNER.format(names=names)):
            reply = kc.execute_interactive(source, timeout=120, output_hook=hook)
            assert reply["content"]["status"] == "ok", "".join(output)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    text = "".join(output)
    marker = text.rfind("__MLCODE__")
    assert marker >= 0, text
    results = json.loads(text[marker + len("__MLCODE__") :].splitlines()[0])
    assert [name for name, _ in results] == names
    failed = [f"{name}: {textwrap.shorten(err, 2000)}" for name, err in results if err]
    assert not failed, "\n".join(failed)
