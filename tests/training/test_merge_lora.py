"""merge_lora: a LoRA adapter (random, non-zero, made with peft on the real SmolLM2 weights) merged into a
servable folder whose weights are exactly base + (alpha / r) * B @ A."""

import json
import subprocess
from pathlib import Path

import pytest

from assay.training.merge_lora import merge_lora

pytestmark = [
    pytest.mark.usefixtures("training_packages"),
    pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing:FutureWarning"),
]  # peft calls it
Q_PROJ = "model.layers.3.self_attn.q_proj.weight"


@pytest.fixture(scope="module")
def adapter(tmp_path_factory, smollm2_dir):
    """An adapter on q_proj and v_proj whose B is random (a fresh LoRA's B is zero: merging it changes nothing)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(smollm2_dir, dtype=torch.float32)
    config = LoraConfig(
        r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False, task_type="CAUSAL_LM"
    )
    peft_model = get_peft_model(model, config)
    folder = tmp_path_factory.mktemp("adapter") / "checkpoint-7"
    peft_model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(smollm2_dir).save_pretrained(folder)
    layer = peft_model.base_model.model.model.layers[3].self_attn.q_proj
    delta = (layer.lora_B["default"].weight @ layer.lora_A["default"].weight) * (8 / 4)
    return folder, delta.detach()


def weights(folder):
    from safetensors.torch import load_file

    return load_file(str(Path(folder) / "model.safetensors"))


def test_assay_merge_lora_writes_a_servable_folder_with_the_exact_update(adapter, smollm2_dir, tmp_path):
    """`assay merge_lora` on the local cluster: the job runs the stage, which saves in the base model's dtype."""
    import torch
    from transformers import AutoModelForCausalLM

    folder, delta = adapter
    out = tmp_path / "merged"
    command = ["assay", "merge_lora", f"--adapter_dir={folder}", f"--output_dir={out}"]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"merge_lora: wrote {out}" in proc.stdout
    merged, base = weights(out), weights(smollm2_dir)
    assert set(merged) == set(base)
    assert merged[Q_PROJ].dtype == base[Q_PROJ].dtype == torch.bfloat16
    # the update is added in float32 and rounded once
    assert torch.equal(merged[Q_PROJ], (base[Q_PROJ].float() + delta).to(torch.bfloat16))
    assert not torch.equal(merged[Q_PROJ], base[Q_PROJ])
    assert torch.equal(merged["model.layers.3.self_attn.k_proj.weight"], base["model.layers.3.self_attn.k_proj.weight"])
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.config.dtype == torch.bfloat16
    assert not list(out.parent.glob(".merged.tmp-*"))
    assert json.loads((out / "assay-merged-from.json").read_text())["adapter_dir"] == str(folder)
    assert all(oct(p.stat().st_mode)[-3:] == "644" for p in out.iterdir())
    assert list((tmp_path / "logs" / "merge_lora").glob("*_log.out"))  # beside the merged folder

    again = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert again.returncode == 2 and "exists; pass ++overwrite=true" in again.stderr


def test_float32_on_request(adapter, smollm2_dir, tmp_path):
    import torch

    folder, delta = adapter
    out = merge_lora(folder, tmp_path / "fp32", base_model="smollm2", dtype="float32")
    merged, base = weights(out), weights(smollm2_dir)
    assert merged[Q_PROJ].dtype == torch.float32
    assert torch.allclose(merged[Q_PROJ], base[Q_PROJ].float() + delta, atol=1e-6)


def test_a_folder_without_an_adapter_is_refused(tmp_path, capsys):
    from assay.training.merge_lora import main

    with pytest.raises(SystemExit) as exit_info:
        main([f"++adapter_dir={tmp_path}", f"++output_dir={tmp_path / 'out'}"])
    assert exit_info.value.code == 2
    assert "is not a LoRA adapter folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([f"++adapter_dir={tmp_path}", f"++output_dir={tmp_path / 'out'}", "++dtype=float8"])
    assert "dtype must be" in capsys.readouterr().err
