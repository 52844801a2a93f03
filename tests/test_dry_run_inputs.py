"""``run SPEC --dry-run`` refuses, in one line, the specs whose real run would fail on a path or a name."""

from pathlib import Path

import pytest

from alignment_tax.cli import main

SPECS = Path(__file__).resolve().parents[1] / "configs" / "experiments"

SPEC = """name: check
output: {out}
models:
  base: {{path: {model}}}
data:
  d: {data}
train:
  s: {{method: sft, model: base, train_data: d}}
evaluate:
  runs: [s]
  tasks: [cmrc2018, bo_zh_mt]
  options: {{max_gen_toks: {caps}}}
"""


def dry_run(tmp_path, capsys, model="Qwen/Qwen3-0.6B", data="samples:mt_train", caps="{bo_zh_mt: 16}"):
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.format(out=tmp_path / "out", model=model, data=data, caps=caps), encoding="utf-8")
    code = main(["run", str(spec), "--dry-run"])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert not (tmp_path / "out").exists()
    return code, err


def test_a_spec_whose_inputs_are_there_or_on_the_hub_passes(tmp_path, capsys):
    assert dry_run(tmp_path, capsys) == (0, [])


def test_a_model_path_that_is_an_adapter_folder_is_one_line(tmp_path, capsys):
    adapter = tmp_path / "runs" / "sft" / "adapter"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text("{}", encoding="utf-8")
    code, err = dry_run(tmp_path, capsys, model=adapter)
    assert code == 2 and len(err) == 1, err
    assert f"models.base.path: {adapter} is a LoRA adapter folder (adapter_config.json), not a model" in err[0]


def test_a_cap_for_a_task_that_is_not_evaluated_is_one_line(tmp_path, capsys):
    code, err = dry_run(tmp_path, capsys, caps="{zh_bo_mt: 16}")
    assert code == 2 and len(err) == 1, err
    assert "evaluate.options.max_gen_toks: zh_bo_mt is not among evaluate.tasks (cmrc2018, bo_zh_mt)" in err[0]


@pytest.mark.parametrize("data", ["data/bo_zh_train.jsonl", "./pairs", "samples:nosuch"])
def test_missing_training_data_is_one_line(tmp_path, capsys, monkeypatch, data):
    monkeypatch.chdir(tmp_path)
    code, err = dry_run(tmp_path, capsys, data=data)
    assert code == 2 and len(err) == 1 and "data.d: " in err[0], err
    assert ("no bundled sample 'nosuch'" if data.startswith("samples:") else f"{data} not found") in err[0]


def test_the_shipped_exp2_spec_names_what_it_still_needs(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["run", str(SPECS / "exp2_strong_sft_vs_rl.yaml"), "--out", str(tmp_path / "out"), "--dry-run"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "models.embedder.path: runs/exp1/train/embedder/embedder not found" in err[0], err
    (tmp_path / "runs/exp1/train/embedder/embedder").mkdir(parents=True)  # Exp 1 has run
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "data.mt_train: data/bo_zh_train.jsonl not found" in err[0], err
