"""IFEval: the benchmark's prepare step on rows in both upstream formats, every instruction checker on a response
that follows it and one that does not, the loose reading, and the grader through evaluate_results and metrics.

The prompts and responses are made up for these tests, in IFEval's format and with its instruction ids.
"""

from __future__ import annotations

import json

import pytest

from assay.benchmarks.registry import get_benchmark, prepare_data
from assay.evaluation.compute_metrics import ComputeMetricsConfig, compute_metrics
from assay.evaluation.evaluate_results import main as evaluate_results_main
from assay.evaluation.graders.ifeval import grade_ifeval_line
from assay.evaluation.instructions import CHECKERS, follows, follows_loosely, sentences
from assay.evaluation.summarize import summarize_results
from assay.inference.prompt import load_prompt_config

LONG_ENGLISH = "The quick brown fox jumps over the lazy dog near the quiet river bank every single morning."

# (instruction id, kwargs, a response that follows it, one that does not)
CASES = [
    ("keywords:existence", {"keywords": ["river", "Fox"]}, LONG_ENGLISH, "The dog sleeps."),
    ("keywords:frequency", {"keyword": "data", "frequency": 3, "relation": "at least"}, "data, Data and DATA", "data"),
    ("keywords:frequency", {"keyword": "data", "frequency": 2, "relation": "less than"}, "data once", "data data"),
    ("keywords:forbidden_words", {"forbidden_words": ["cat"]}, "A category error.", "My Cat sleeps."),
    ("keywords:letter_frequency", {"letter": "z", "let_frequency": 2, "let_relation": "at least"}, "Zoo zone", "zoo"),
    ("language:response_language", {"language": "fr"}, "Le chat dort sur le canapé toute la journée.", LONG_ENGLISH),
    ("change_case:english_capital", {}, LONG_ENGLISH.upper(), LONG_ENGLISH),
    ("change_case:english_lowercase", {}, LONG_ENGLISH.lower(), LONG_ENGLISH),
    (
        "change_case:capital_word_frequency",
        {"capital_frequency": 2, "capital_relation": "less than"},
        "ONE capital word",
        "TWO CAPITAL words",
    ),
    (
        "length_constraints:number_sentences",
        {"num_sentences": 3, "relation": "less than"},
        "Rain falls. Wind blows.",
        "Rain falls. Wind blows. Sun shines.",
    ),
    ("length_constraints:number_words", {"num_words": 5, "relation": "at least"}, "one two three four five", "one"),
    ("length_constraints:number_paragraphs", {"num_paragraphs": 2}, "first\n***\nsecond", "first\n***\n***\nsecond"),
    (
        "length_constraints:nth_paragraph_first_word",
        {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "then"},
        'First part.\n\n"Then, the second.',
        "First part.\n\nAfter that, the second.",
    ),
    ("detectable_content:number_placeholders", {"num_placeholders": 2}, "Dear [name] at [address]", "Dear [name]"),
    ("detectable_content:postscript", {"postscript_marker": "P.S."}, "Hello.\n\nP.S. Bye.", "Hello. PS bye."),
    ("detectable_content:postscript", {"postscript_marker": "P.P.S"}, "Hi\np. p. s. more", "Hi\nP.S. more"),
    ("detectable_format:number_bullet_lists", {"num_bullets": 2}, "* one\n- two\n**bold**", "* one\n* two\n* three"),
    ("detectable_format:constrained_response", {}, "Well. My answer is maybe.", "My answer is perhaps."),
    ("detectable_format:number_highlighted_sections", {"num_highlights": 2}, "*one* and **two**", "*one* and ** **"),
    (
        "detectable_format:multiple_sections",
        {"section_spliter": "SECTION", "num_sections": 2},
        "SECTION 1\na\nSECTION 2\nb",
        "SECTION 1\na",
    ),
    ("detectable_format:json_format", {}, '```json\n{"a": [1, 2]}\n```', "{'a': 1}"),
    ("detectable_format:title", {}, "<<A Good Title>>\nbody", "<< >>\nbody"),
    ("combination:two_responses", {}, "First answer.\n******\nSecond answer.", "Same.\n******\nSame."),
    ("combination:repeat_prompt", {"prompt_to_repeat": "Write a poem."}, "write a poem. Roses...", "A poem: roses"),
    (
        "startend:end_checker",
        {"end_phrase": "Any other questions?"},
        '"Done. Any other questions?"',
        "Any other questions? No",
    ),
    ("startend:quotation", {}, '  "wrapped"  ', '"only at the start'),
    ("punctuation:no_comma", {}, "No commas here.", "One, two."),
]


@pytest.mark.parametrize("instruction_id, kwargs, followed, violated", CASES)
def test_each_checker_tells_a_followed_instruction_from_a_violated_one(instruction_id, kwargs, followed, violated):
    assert follows(instruction_id, followed, kwargs) is True
    assert follows(instruction_id, violated, kwargs) is False


def test_every_ifeval_instruction_has_a_checker_and_a_case():
    assert len(CHECKERS) == 25 and {case[0] for case in CASES} == set(CHECKERS)


def test_sentences_do_not_end_at_abbreviations_initials_or_decimals():
    text = "Dr. Smith paid 3.50 dollars. J. R. R. Tolkien wrote it! Did he? Yes."
    assert sentences(text) == ["Dr. Smith paid 3.50 dollars.", "J. R. R. Tolkien wrote it!", "Did he?", "Yes."]


def test_the_loose_reading_forgives_a_preamble_line_and_markdown_stars():
    response = 'Sure, here you go:\n"All of it in quotes"'
    assert not follows("startend:quotation", response, {})
    assert follows_loosely("startend:quotation", response, {})
    starred = "**Title**\nThe answer has no comma"
    assert follows_loosely("detectable_format:number_bullet_lists", starred, {"num_bullets": 0})


HUB_ROW = {
    "key": 1001,
    "prompt": "Write a haiku about rain, all in lowercase, with the word 'roof' at least twice.",
    "instruction_id_list": ["change_case:english_lowercase", "keywords:frequency"],
    "kwargs": [
        {"keyword": None, "frequency": None, "relation": None, "num_words": None},
        {"keyword": "roof", "frequency": 2, "relation": "at least", "num_words": None},
    ],
}
RELEASE_ROW = {  # Google's input_data.jsonl: only the arguments an instruction takes
    "key": 1002,
    "prompt": "Answer with fewer than 10 words, and no commas: what is rain?",
    "instruction_id_list": ["length_constraints:number_words", "punctuation:no_comma"],
    "kwargs": [{"num_words": 10, "relation": "less than"}, {}],
}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ASSAY_CACHE_DIR", str(tmp_path / "cache"))


def test_prepare_reads_both_upstream_formats_and_drops_the_hubs_null_arguments(tmp_path, cache):
    source = tmp_path / "ifeval-upstream.jsonl"
    source.write_text(json.dumps(HUB_ROW) + "\n" + json.dumps(RELEASE_ROW) + "\n")
    lines = [json.loads(x) for x in prepare_data("ifeval", data_file=str(source)).read_text().splitlines()]
    assert [x["id"] for x in lines] == ["ifeval-1001", "ifeval-1002"]
    assert lines[0]["kwargs"] == [{}, {"keyword": "roof", "frequency": 2, "relation": "at least"}]
    assert lines[1]["kwargs"] == RELEASE_ROW["kwargs"]
    prompt = load_prompt_config(get_benchmark("ifeval").prompt_config)
    assert prompt.messages(lines[0])[-1]["content"] == HUB_ROW["prompt"]  # sent as it is


def test_a_line_is_graded_strict_and_loose_and_reasoning_is_not_graded():
    line = {
        "instruction_id_list": ["change_case:english_lowercase", "keywords:frequency"],
        "kwargs": [{}, {"keyword": "roof", "frequency": 2, "relation": "at least"}],
        "generation": "<think>The Roof must appear twice.</think>Here is my haiku:\nrain on the roof\nthe roof sings softly",
    }
    graded = grade_ifeval_line(line)
    assert graded["follow_instruction_list"] == [False, True]  # "Here" is capitalised
    assert graded["follow_instruction_list_loose"] == [True, True]  # without the first line it is all lowercase
    assert graded["follow_all_instructions"] is False and graded["follow_all_instructions_loose"] is True
    unfinished = grade_ifeval_line(dict(line, generation="<think>rain on the roof, the roof"))
    assert unfinished["follow_instruction_list_loose"] == [False, False]


def test_a_line_that_cannot_be_checked_is_flagged_and_the_rest_are_graded(tmp_path, capsys):
    folder = tmp_path / "eval-results" / "ifeval"
    folder.mkdir(parents=True)
    good = {"id": "a", "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}
    typo = {"id": "b", "instruction_id_list": ["punctuation:no_commas"], "kwargs": [{}]}
    missing = {"id": "c", "instruction_id_list": ["keywords:frequency"], "kwargs": [{"keyword": "x"}]}
    answers = [["No comma here", "fine", "x x"], ["One, two", "fine", "x"]]
    for seed, per_line in enumerate(answers):
        lines = [{**p, "generation": g} for p, g in zip((good, typo, missing), per_line)]
        (folder / f"output-rs{seed}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    evaluate_results_main([f"++input_files={folder}/output-rs*.jsonl", "++grader=ifeval"])
    assert "2 line(s) whose instructions cannot be checked" in capsys.readouterr().out
    graded = [json.loads(x) for x in (folder / "output-rs0.jsonl").read_text().splitlines()]
    assert [g["follow_all_instructions"] for g in graded] == [True, False, False]
    assert "unknown IFEval instruction 'punctuation:no_commas'" in graded[1]["grading_error"]
    assert "missing argument" in graded[2]["grading_error"]

    doc = compute_metrics(ComputeMetricsConfig(input_dir=str(folder), grader="ifeval"))
    assert doc["correct_key"] == "follow_all_instructions"
    assert doc["metrics"]["pass@1[avg-of-2]"]["follow_all_instructions"] == pytest.approx(100 / 6)
    assert doc["metrics"]["pass@2"]["follow_all_instructions"] == pytest.approx(100 / 3)
    figures = doc["ifeval"]
    assert figures["prompt_level_strict_accuracy"] == pytest.approx(100 / 6)
    assert figures["instruction_level_strict_accuracy"] == pytest.approx(100 / 6)
    table = summarize_results(str(tmp_path), print_output=False)
    assert "IFEval accuracy (mean over seeds): prompt level strict 16.67%" in table
