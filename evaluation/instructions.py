"""IFEval's verifiable instructions (Zhou et al., 2023): one checker per instruction id, each deciding from the
response text alone whether the instruction was followed.

A checker takes the response and the instruction's arguments (IFEval's `kwargs`, with unused keys absent
or None) and returns True or False. `follows(instruction_id, response, kwargs)` runs one; an unknown id is a
`ValueError` naming the known ones, so a line of data with a typo is flagged instead of scored.

Where IFEval's reference code leans on NLTK data that needs a download (its `punkt` sentence model) these
checkers use rules of their own: sentences end at `.`, `!` or `?` followed by a space and a capital letter,
digit or quote, except after common abbreviations and initials; words are runs of letters, digits and `_`
(IFEval's own word counter). Language detection uses `langdetect`, seeded, as the reference does; a text it
cannot classify counts as followed, as there.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable, Mapping, Optional

Checker = Callable[[str, Mapping[str, Any]], bool]
CHECKERS: dict[str, Checker] = {}


def _checker(instruction_id: str) -> Callable[[Checker], Checker]:
    def add(function: Checker) -> Checker:
        CHECKERS[instruction_id] = function
        return function

    return add


def follows(instruction_id: str, response: str, kwargs: Optional[Mapping[str, Any]] = None) -> bool:
    """Whether `response` follows the instruction; arguments set to None count as absent."""
    if instruction_id not in CHECKERS:
        known = ", ".join(sorted(CHECKERS))
        raise ValueError(f"unknown IFEval instruction {instruction_id!r} (known: {known})")
    given = {k: v for k, v in (kwargs or {}).items() if v is not None}
    return CHECKERS[instruction_id](response, given)


def _compare(count: int, relation: str, n: int) -> bool:
    """IFEval's two relations: 'less than' (count < n) and 'at least' (count >= n)."""
    if relation == "less than":
        return count < n
    if relation == "at least":
        return count >= n
    raise ValueError(f"relation must be 'less than' or 'at least', got {relation!r}")


# ----------------------------------------------------------------------------------------------- text units

_WORD = re.compile(r"\w+")
_ABBREVIATIONS = {
    "mr",
    "mrs",
    "ms",
    "dr",
    "prof",
    "sr",
    "jr",
    "st",
    "vs",
    "etc",
    "inc",
    "ltd",
    "co",
    "corp",
    "no",
    "fig",
    "e.g",
    "i.e",
    "u.s",
    "a.m",
    "p.m",
    "approx",
    "dept",
    "est",
    "mt",
}
_SENTENCE_END = re.compile(r"([.!?]+)([\"')\]]*)\s+(?=[\"'(\[]?[A-Z0-9])")


def words(text: str) -> list[str]:
    return _WORD.findall(text)


def sentences(text: str) -> list[str]:
    """The text's sentences (see the module docstring for the rule)."""
    found, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        before = text[start : match.start()].split()
        last = before[-1].lower().rstrip(".") if before else ""
        if match.group(1) == "." and (last in _ABBREVIATIONS or (len(last) == 1 and last.isalpha())):
            continue  # "Dr. Smith", "J. R. R. Tolkien"
        found.append(text[start : match.end()].strip())
        start = match.end()
    rest = text[start:].strip()
    if rest:
        found.append(rest)
    return [s for s in found if _WORD.search(s)]


def _detect_language(text: str) -> Optional[str]:
    import langdetect

    langdetect.DetectorFactory.seed = 0  # langdetect samples; a fixed seed makes a verdict repeatable
    try:
        return langdetect.detect(text)
    except langdetect.LangDetectException:
        return None


# ----------------------------------------------------------------------------------------------- keywords


@_checker("keywords:existence")
def _keywords_exist(response: str, kw: Mapping[str, Any]) -> bool:
    return all(re.search(re.escape(str(word)), response, re.IGNORECASE) for word in kw.get("keywords", []))


@_checker("keywords:frequency")
def _keyword_frequency(response: str, kw: Mapping[str, Any]) -> bool:
    count = len(re.findall(re.escape(str(kw["keyword"])), response, re.IGNORECASE))
    return _compare(count, kw["relation"], int(kw["frequency"]))


@_checker("keywords:forbidden_words")
def _no_forbidden_words(response: str, kw: Mapping[str, Any]) -> bool:
    return not any(
        re.search(r"\b" + re.escape(str(word)) + r"\b", response, re.IGNORECASE)
        for word in kw.get("forbidden_words", [])
    )


@_checker("keywords:letter_frequency")
def _letter_frequency(response: str, kw: Mapping[str, Any]) -> bool:
    count = response.lower().count(str(kw["letter"]).lower())
    return _compare(count, kw["let_relation"], int(kw["let_frequency"]))


# ----------------------------------------------------------------------------------------------- language and case


@_checker("language:response_language")
def _in_language(response: str, kw: Mapping[str, Any]) -> bool:
    detected = _detect_language(response)
    return detected is None or detected == kw["language"]


@_checker("change_case:english_capital")
def _all_capitals_in_english(response: str, kw: Mapping[str, Any]) -> bool:
    return response.isupper() and _detect_language(response) in (None, "en")


@_checker("change_case:english_lowercase")
def _all_lowercase_in_english(response: str, kw: Mapping[str, Any]) -> bool:
    return response.islower() and _detect_language(response) in (None, "en")


@_checker("change_case:capital_word_frequency")
def _capital_words(response: str, kw: Mapping[str, Any]) -> bool:
    count = sum(1 for word in re.findall(r"[\w'-]+", response) if word.isupper())
    return _compare(count, kw["capital_relation"], int(kw["capital_frequency"]))


# ----------------------------------------------------------------------------------------------- length


@_checker("length_constraints:number_sentences")
def _sentence_count(response: str, kw: Mapping[str, Any]) -> bool:
    return _compare(len(sentences(response)), kw["relation"], int(kw["num_sentences"]))


@_checker("length_constraints:number_words")
def _word_count(response: str, kw: Mapping[str, Any]) -> bool:
    return _compare(len(words(response)), kw["relation"], int(kw["num_words"]))


@_checker("length_constraints:number_paragraphs")
def _paragraphs_by_dividers(response: str, kw: Mapping[str, Any]) -> bool:
    """Paragraphs separated by the markdown divider `***`; an empty one between two dividers fails."""
    parts = re.split(r"\s?\*\*\*\s?", response)
    inner_empty = any(not part.strip() for part in parts[1:-1])
    count = sum(1 for part in parts if part.strip())
    return not inner_empty and count == int(kw["num_paragraphs"])


@_checker("length_constraints:nth_paragraph_first_word")
def _nth_paragraph_starts_with(response: str, kw: Mapping[str, Any]) -> bool:
    """Paragraphs separated by blank lines: exactly `num_paragraphs`, the `nth_paragraph`-th (from 1) starting
    with `first_word` (case and surrounding punctuation ignored)."""
    paragraphs = [p for p in re.split(r"\n\s*\n", response) if p.strip()]
    nth = int(kw["nth_paragraph"])
    if len(paragraphs) != int(kw["num_paragraphs"]) or not 1 <= nth <= len(paragraphs):
        return False
    first = paragraphs[nth - 1].split()[0] if paragraphs[nth - 1].split() else ""
    first = first.strip("\"'`*_.,;:!?()[]{}").lower()
    return first == str(kw["first_word"]).strip().lower()


# ----------------------------------------------------------------------------------------------- content and format


@_checker("detectable_content:number_placeholders")
def _placeholders(response: str, kw: Mapping[str, Any]) -> bool:
    return len(re.findall(r"\[.*?\]", response)) >= int(kw["num_placeholders"])


@_checker("detectable_content:postscript")
def _postscript(response: str, kw: Mapping[str, Any]) -> bool:
    """The marker (`P.S.`, `P.P.S`, ...) somewhere in the text, any case, a space allowed after each of its dots."""
    marker = str(kw["postscript_marker"]).strip().lower()
    if not marker:
        return False
    pattern = "".join(re.escape(c) + (r"\s?" if c == "." else "") for c in marker)
    return re.search(pattern, response.lower()) is not None


@_checker("detectable_format:number_bullet_lists")
def _bullets(response: str, kw: Mapping[str, Any]) -> bool:
    """Exactly `num_bullets` markdown bullets (`* item` or `- item` lines; `**bold**` lines are not bullets)."""
    stars = re.findall(r"^\s*\*[^*].*$", response, re.MULTILINE)
    dashes = re.findall(r"^\s*-.*$", response, re.MULTILINE)
    return len(stars) + len(dashes) == int(kw["num_bullets"])


@_checker("detectable_format:constrained_response")
def _one_of_the_fixed_answers(response: str, kw: Mapping[str, Any]) -> bool:
    return any(answer in response for answer in ("My answer is yes.", "My answer is no.", "My answer is maybe."))


@_checker("detectable_format:number_highlighted_sections")
def _highlights(response: str, kw: Mapping[str, Any]) -> bool:
    """At least `num_highlights` markdown highlights, `*text*` or `**text**`, with text in them."""
    single = [m for m in re.findall(r"\*[^\n*]*\*", response) if m.strip("*").strip()]
    double = [m for m in re.findall(r"\*\*[^\n*]*\*\*", response) if m.strip("*").strip()]
    return len(single) + len(double) >= int(kw["num_highlights"])


@_checker("detectable_format:multiple_sections")
def _sections(response: str, kw: Mapping[str, Any]) -> bool:
    """At least `num_sections` sections, each opened by the splitter word and a number (`SECTION 1`)."""
    splitter = re.escape(str(kw["section_spliter"]).strip())
    parts = re.split(r"\s?" + splitter + r"\s?\d+\s?", response)
    return len(parts) - 1 >= int(kw["num_sections"])


@_checker("detectable_format:json_format")
def _whole_response_is_json(response: str, kw: Mapping[str, Any]) -> bool:
    text = response.strip()
    text = re.sub(r"^```(?:json|Json|JSON)?\s*", "", text)
    text = re.sub(r"\s*```$", "", text).strip()
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


@_checker("detectable_format:title")
def _title(response: str, kw: Mapping[str, Any]) -> bool:
    return any(title.strip() for title in re.findall(r"<<([^\n]+?)>>", response))


@_checker("combination:two_responses")
def _two_different_responses(response: str, kw: Mapping[str, Any]) -> bool:
    """Two responses separated by six asterisks, both non-empty and not the same."""
    parts = response.split("******")
    inner = parts[1:-1]
    nonempty = [p.strip() for p in parts if p.strip()]
    return not any(not p.strip() for p in inner) and len(nonempty) == 2 and nonempty[0] != nonempty[1]


@_checker("combination:repeat_prompt")
def _repeats_the_request_first(response: str, kw: Mapping[str, Any]) -> bool:
    return response.strip().lower().startswith(str(kw["prompt_to_repeat"]).strip().lower())


@_checker("startend:end_checker")
def _ends_with(response: str, kw: Mapping[str, Any]) -> bool:
    return response.strip().strip('"').lower().endswith(str(kw["end_phrase"]).strip().lower())


@_checker("startend:quotation")
def _wrapped_in_quotes(response: str, kw: Mapping[str, Any]) -> bool:
    text = response.strip()
    return len(text) > 1 and text[0] == '"' and text[-1] == '"'


@_checker("punctuation:no_comma")
def _no_comma(response: str, kw: Mapping[str, Any]) -> bool:
    return "," not in response


# ----------------------------------------------------------------------------------------------- loose variants


def loose_variants(response: str) -> list[str]:
    """IFEval's loose reading: the response, without its first line, without its last, without both, each
    also without markdown asterisks; an instruction counts as followed if any non-empty variant follows it."""
    lines = response.split("\n")
    cut = [response, "\n".join(lines[1:]), "\n".join(lines[:-1]), "\n".join(lines[1:-1])]
    variants = cut + [v.replace("*", "") for v in cut]
    return [v for v in variants if v.strip()]


def follows_loosely(instruction_id: str, response: str, kwargs: Optional[Mapping[str, Any]] = None) -> bool:
    return any(follows(instruction_id, variant, kwargs) for variant in loose_variants(response))
