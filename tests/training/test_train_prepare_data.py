"""prepare_data: every filter on a small hand-made SDG file, with the real SmolLM2 tokenizer and chat template."""

import json

import pytest

from assay.benchmarks.registry import prepared_test_file
from assay.core.jsonl import read_jsonl
from assay.training import prepare_data
from assay.training.chat_tokens import IGNORE_INDEX, load_tokenizer, tokenize_conversation
from assay.training.code_checks import undefined_names

GOOD = "import torch\n\n\ndef scale(x):\n    return torch.as_tensor(x) * 2\n"
LONG_DOC = " ".join(f"word{i}" for i in range(60))


def answer(code, before="Here is the code:", after="It doubles x."):
    return f"{before}\n\n```python\n{code}```\n\n{after}"


def sdg_lines():
    """One line per filter (plus kept ones); `why` is what the report must say about it."""
    mlcode_prompt = next(read_jsonl(prepared_test_file("mlcode")))["prompt"]
    long_code = GOOD + "".join(f"\n\ndef helper_{i}(value):\n    return value + {i}\n" for i in range(40))
    near_a = f"def describe():\n    return '{LONG_DOC} alpha'\n"
    near_b = f"def describe():\n    return '{LONG_DOC} beta'\n"
    return [
        {"prompt": "Write scale(x) that doubles a tensor.", "generation": answer(GOOD), "why": "kept"},
        {
            "prompt": "Write scale(x).",
            "generation": answer(GOOD),
            "finish_reason": "length",
            "why": "failed_generation",
        },
        {"prompt": "Write scale(x) please.", "generation": "I would use torch for this.", "why": "no_code"},
        {"prompt": "Write scale(x) now.", "generation": answer("def scale(x)\n    return x\n"), "why": "syntax_error"},
        {
            "prompt": "Write scale(x), no import.",
            "generation": answer("def scale(x):\n    return torch.tensor(x)\n"),
            "why": "undefined_names",
        },
        {"prompt": "Write many helpers.", "generation": answer(long_code), "why": "too_long"},
        {"prompt": mlcode_prompt, "generation": answer(GOOD), "why": "contaminated"},
        {"prompt": "Write scale(x) that doubles a tensor.", "generation": answer(GOOD), "why": "exact_duplicate"},
        {"prompt": "Describe it.", "generation": answer(near_a), "why": "kept"},
        {"prompt": "Describe it.", "generation": answer(near_b), "why": "near_duplicate"},
    ]


def run(tmp_path, lines, *overrides):
    src = tmp_path / "sdg.jsonl"
    src.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = tmp_path / "sft.jsonl"
    prepare_data.main([f"++input_file={src}", f"++output_file={out}", "++model=smollm2", *overrides])
    return list(read_jsonl(out)), json.loads((tmp_path / "sft.report.json").read_text())


def test_each_filter_removes_its_case_and_the_report_counts_it(tmp_path, smollm2_dir, capsys):
    lines = sdg_lines()
    kept, report = run(
        tmp_path,
        lines,
        "++max_length=400",
        "++code_targets=true",
        "++decontaminate=[mlcode,smallmath]",
        "++system_message=You write code.",
    )
    expected = [line["why"] for line in lines]
    assert [k["source_index"] for k in kept] == [i for i, why in enumerate(expected) if why == "kept"]
    for reason in prepare_data.FILTERS:
        assert report["removed"][reason] == expected.count(reason), reason
        listed = [d["index"] for d in report["details"].get(reason, [])]
        assert listed == [i for i, why in enumerate(expected) if why == reason], reason
    assert report["input"] == len(lines) and report["kept"] == 2
    assert report["details"]["undefined_names"][0]["names"] == ["torch"]
    assert report["details"]["contaminated"][0]["benchmark"] == "mlcode"
    assert report["details"]["near_duplicate"][0]["duplicate_of"] == 8
    assert report["details"]["too_long"][0]["tokens"] > 400
    # prose stripped: the target is the code alone, in one fenced block
    first = kept[0]["messages"]
    assert [m["role"] for m in first] == ["system", "user", "assistant"]
    assert first[-1]["content"] == "```python\n" + GOOD.rstrip() + "\n```"
    stats = report["token_length"]
    assert stats["count"] == 2 and sum(b["count"] for b in stats["histogram"]) == 2
    assert stats["histogram"][-1]["to"] == 400
    printed = capsys.readouterr().out
    assert "prepare_data: kept 2 of 10" in printed and "overlaps mlcode/" in printed


def test_length_is_measured_with_the_exact_template_and_never_truncated(tmp_path, smollm2_dir):
    tok = load_tokenizer("smollm2")
    messages = [{"role": "user", "content": "Say hi."}, {"role": "assistant", "content": "\n\nHi there!"}]
    conv = tokenize_conversation(tok, messages)
    # the ids are the chat template's rendering, token for token
    assert tok.decode(conv.input_ids) == tok.apply_chat_template(messages, tokenize=False)
    # the prompt part is exactly what a server tokenizes for generation
    prompt_ids = tok(
        tok.apply_chat_template(messages[:1], tokenize=False, add_generation_prompt=True), add_special_tokens=False
    )["input_ids"]
    assert conv.input_ids[: len(prompt_ids)] == prompt_ids
    assert conv.labels[: len(prompt_ids)] == [IGNORE_INDEX] * len(prompt_ids)
    trained = [t for t in conv.labels if t != IGNORE_INDEX]
    assert tok.decode(trained) == "\n\nHi there!<|im_end|>"  # stops at the end-of-turn token
    line = {"prompt": "Say hi.", "generation": "\n\nHi there!"}
    kept, report = run(tmp_path, [line], f"++max_length={len(conv)}")
    assert report["kept"] == 1 and kept[0]["num_tokens"] == len(conv)
    assert kept[0]["messages"][-1]["content"] == "\n\nHi there!"  # untouched without code_targets
    kept, report = run(tmp_path, [line], f"++max_length={len(conv) - 1}")
    assert kept == [] and report["removed"]["too_long"] == 1


def test_prompt_config_builds_eval_prompts_and_short_benchmark_questions_are_caught(tmp_path, smollm2_dir):
    lines = [
        {"problem": "What is 7 + 5?", "generation": "7 + 5 = \\boxed{12}"},
        {"problem": "What is 70 + 50?", "generation": "\\boxed{120}"},
        {"problem": "What is 70 + 50?", "generation": "\\boxed{120}", "error": "timeout"},
    ]
    kept, report = run(tmp_path, lines, "++prompt_config=generic/math", "++decontaminate=[smallmath]")
    assert [k["source_index"] for k in kept] == [1]
    assert report["details"]["contaminated"] == [
        {"index": 0, "benchmark": "smallmath", "item_id": "smallmath-00", "overlap": 1.0}
    ]
    assert report["removed"]["failed_generation"] == 1
    assert kept[0]["messages"][0]["content"].startswith("Solve the following math problem.")


def test_dedup_on_prompt_keeps_one_response_per_prompt(tmp_path, smollm2_dir):
    lines = [{"prompt": "Name a colour.", "generation": "Red."}, {"prompt": "Name a colour.", "generation": "Blue."}]
    kept, _ = run(tmp_path, lines)
    assert len(kept) == 2
    kept, report = run(tmp_path, lines, "++dedup_on=prompt")
    assert len(kept) == 1 and report["removed"]["exact_duplicate"] == 1


def test_a_missing_prompt_field_is_a_config_error(tmp_path, smollm2_dir, capsys):
    with pytest.raises(SystemExit) as exc:
        run(tmp_path, [{"question": "q", "generation": "a"}])
    assert exc.value.code == 2
    assert "no string field 'prompt'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "code, missing",
    [
        ("import torch\ndef f(x):\n    return np.sum(torch.tensor(x))\n", ["np"]),
        ("class C:\n    a = 1\n    def m(self):\n        return a\n", ["a"]),  # class attributes are not in scope
        ("def f():\n    global G\n    G = 1\nprint(G, __name__, [i for i in range(2)])\n", []),
        ("try:\n    import numpy as np\nexcept ImportError as e:\n    print(e)\n", []),
    ],
)
def test_undefined_names_is_scope_aware(code, missing):
    assert undefined_names(code) == missing


def test_sandbox_check_drops_code_that_fails_when_run(tmp_path, smollm2_dir, sandbox_url):
    passing_tests = "def test_scale():\n    assert scale(2).item() == 4\n"
    lines = [
        {"prompt": "scale", "generation": answer(GOOD), "entry_point": "scale", "tests": passing_tests},
        {
            "prompt": "scale, missing module",
            "generation": answer("import not_a_module_xyz\n\ndef scale(x):\n    return x\n"),
            "entry_point": "scale",
        },
        {
            "prompt": "scale, wrong",
            "generation": answer("def scale(x):\n    return x\n"),
            "entry_point": "scale",
            "tests": passing_tests,
        },
    ]
    kept, report = run(tmp_path, lines, "++code_targets=true", "++sandbox_check=true", f"++sandbox_url={sandbox_url}")
    assert [k["source_index"] for k in kept] == [0]
    failed = {d["index"]: d for d in report["details"]["sandbox_failed"]}
    assert set(failed) == {1, 2}
    assert failed[2]["tests_passed"] == 0 and failed[2]["tests_total"] == 1
