"""`alignment-tax sweep`: an adapter at several strengths; strength 0 is the base, strength 1 the adapter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from alignment_tax.cli import main
from alignment_tax.errors import UserError
from alignment_tax.evaluation.adapter_scaling import scale_adapter
from alignment_tax.evaluation.sweep import parse_scales

TASKS = "bo_zh_mt,cmrc2018,drift"


def test_parse_scales():
    assert parse_scales("1,0, 0.5,0.5") == [0.0, 0.5, 1.0]
    for bad in ("", "a,b", "-0.5", "9"):
        with pytest.raises(UserError):
            parse_scales(bad)


# Not a power of two, so the scaled B is rounded and a wrong factor (0.3 on A too, 0.3² overall,
# or the adapter's alpha/r folded in twice) cannot come out right by accident.
SCALE = 0.3


def test_a_scaled_copy_moves_the_merged_weights_by_that_fraction_of_the_update(tiny_lm_dir, tiny_adapter_dir, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    original = load_file(str(tiny_adapter_dir / "adapter_model.safetensors"))
    config = json.loads((tiny_adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
    scaling = config["lora_alpha"] / config["r"]
    base = AutoModelForCausalLM.from_pretrained(tiny_lm_dir, dtype=torch.float32)
    before = {name: weight.detach().clone() for name, weight in base.state_dict().items()}
    scaled = scale_adapter(tiny_adapter_dir, SCALE, tmp_path / "scaled")
    # PEFT's own merge of the scaled copy: the weights a sweep run at strength 0.3 computes with.
    after = PeftModel.from_pretrained(base, scaled).merge_and_unload().state_dict()
    targets = set()
    for name, a in original.items():
        if ".lora_A." not in name:
            continue
        weight = name.removeprefix("base_model.model.").replace(".lora_A.weight", ".weight")
        b = original[name.replace(".lora_A.", ".lora_B.")]
        # The original update in float64, from the saved A and B alone.
        expected = SCALE * scaling * (b.double() @ a.double())
        delta = after[weight].double() - before[weight].double()  # exact: both are float32
        # The merge runs in float32: 0.3·B, the rank-4 product and W + ΔW each round to within
        # 2⁻²⁴ of their size, so 8·2⁻²⁴·(|W| + |ΔW|) bounds the error with room to spare; a wrong
        # factor is off by at least 0.2·|ΔW|, orders of magnitude more.
        tolerance = 8 * 2**-24 * float(before[weight].abs().max() + expected.abs().max())
        torch.testing.assert_close(delta, expected, rtol=0, atol=tolerance, msg=weight)
        assert float(expected.abs().max()) > 1000 * tolerance, weight  # the check has something to see
        targets.add(weight)
    assert len(targets) == 7 * 2  # seven projections in each of the tiny model's two layers
    untouched = [name for name in before if name not in targets and not torch.equal(before[name], after[name])]
    assert untouched == []


def test_strength_one_copies_the_adapter_byte_for_byte_and_a_non_adapter_is_refused(tiny_adapter_dir, tmp_path):
    one = scale_adapter(tiny_adapter_dir, 1.0, tmp_path / "one") / "adapter_model.safetensors"
    assert one.read_bytes() == (tiny_adapter_dir / "adapter_model.safetensors").read_bytes()
    with pytest.raises(UserError):
        scale_adapter(tmp_path, 0.5, tmp_path / "x")


@pytest.fixture(scope="module")
def swept(tmp_path_factory, tiny_lm_dir, tiny_adapter_dir, shared_data):
    root = tmp_path_factory.mktemp("sweep")
    common = [
        "--tasks",
        TASKS,
        "--limit",
        "4",
        "--batch-size",
        "4",
        "--device",
        "cpu",
        "--drift-window",
        "64",
        "--model",
        str(tiny_lm_dir),
        "--data-dir",
        str(shared_data),
    ]
    assert (
        main(
            [
                "sweep",
                "--scales",
                "0,0.5,1",
                "--adapter",
                str(tiny_adapter_dir),
                "--output",
                str(root / "sweep"),
                *common,
            ]
        )
        == 0
    )
    assert (
        main(["evaluate", "--adapter", str(tiny_adapter_dir), "--base", "--output", str(root / "plain"), *common]) == 0
    )
    read = lambda path: json.loads((path / "results.json").read_text(encoding="utf-8"))  # noqa: E731
    return root, {s: read(root / "sweep" / f"scale_{s}") for s in ("0", "1")}, read(root / "plain")


def _outputs(folder):
    return [json.loads(line)["output"] for line in (folder / "samples" / "bo_zh_mt.jsonl").read_text().splitlines()]


def test_strength_zero_is_the_base_exactly(swept):
    root, runs, _ = swept
    zero = runs["0"]
    assert zero["config"]["adapter_scale"] == 0.0
    assert zero["drift"]["kl"]["mean"] == 0.0 and zero["drift"]["delta_nll"]["mean"] == 0.0
    assert all(value == 0 for value in zero["tax"]["bo_zh_mt"].values())
    base_folder = next((root / "sweep" / "_base").iterdir())
    assert _outputs(root / "sweep" / "scale_0") == _outputs(base_folder)


def test_strength_one_is_a_plain_evaluate_of_the_adapter(swept):
    root, runs, plain = swept
    one = runs["1"]
    assert one["config"]["adapter_scale"] == 1.0 and one["config"]["adapter_scaled_from"]
    assert one["tasks"] == plain["tasks"] and one["tax"] == plain["tax"]
    assert one["drift"]["kl"] == plain["drift"]["kl"] and one["drift"]["kl"]["mean"] > 0
    assert _outputs(root / "sweep" / "scale_1") == _outputs(root / "plain")
    # both strengths reuse one base evaluation
    assert len(list((root / "sweep" / "_base").iterdir())) == 1


def test_sweep_needs_an_adapter_and_a_generating_engine(tmp_path, capsys):
    assert main(["sweep", "--scales", "0,1", "--tasks", "drift", "--model", "x", "--output", str(tmp_path / "o")]) == 2
    assert "needs --adapter" in capsys.readouterr().err


def test_report_draws_the_frontier(swept, tmp_path):
    from alignment_tax.reports import build_report

    root, _, _ = swept
    runs = [str(root / "sweep" / f"scale_{s}") for s in ("0", "0.5", "1")]
    out = tmp_path / "report.html"
    build_report(runs, out=str(out))
    html = out.read_text(encoding="utf-8")
    assert "frontier<" in html and "(s=0.5)" in html
    assert '<g id="frontier-' in html  # the swept adapter's line through its strengths is drawn


def sweep_spec(folder, output, strengths: str, more: str = "") -> Path:
    """A spec whose tiny adapter is swept at ``strengths`` (YAML list), with ``more`` YAML lines after."""
    spec = folder / "spec.yaml"
    spec.write_text(
        f"""name: sweep
output: {output}
models:
  base: {{tiny: {{kind: lm}}}}
  adapter: {{tiny: {{kind: adapter, base: base}}}}
evaluate:
  runs: [adapter]
  tasks: [drift]
  sweep: {{adapter: {strengths}}}
{more}""",
        encoding="utf-8",
    )
    return spec


def test_a_spec_asks_for_a_sweep(tmp_path, capsys):
    """`evaluate.sweep` in a spec: each strength is evaluated beside the other runs, sharing their base."""
    spec = sweep_spec(
        tmp_path,
        tmp_path / "out",
        "[0, 1]",
        "  options: {samples: true, limit: 4, drift_window: 64, device: cpu}\nreport: {formats: [md]}\n",
    )
    assert main(["run", str(spec), "--dry-run"]) == 0
    assert "adapter swept at strengths 0, 1: drift" in capsys.readouterr().out
    assert main(["run", str(spec)]) == 0
    evaluations = tmp_path / "out" / "eval"
    zero = json.loads((evaluations / "adapter_scale_0" / "results.json").read_text(encoding="utf-8"))
    one = json.loads((evaluations / "adapter_scale_1" / "results.json").read_text(encoding="utf-8"))
    plain = json.loads((evaluations / "adapter" / "results.json").read_text(encoding="utf-8"))
    assert zero["drift"]["kl"]["mean"] == 0.0 and one["drift"]["kl"] == plain["drift"]["kl"]
    assert len(list((evaluations / "_base").iterdir())) == 1  # one base for the runs and the sweep
    assert "adapter_scale_1" in (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    # What a person reads: each evaluation's drift in a line, and where the report is; no JSON.
    printed = capsys.readouterr().out
    assert "adapter@1: drift: mean KL" in printed and "reports: " in printed and "{" not in printed


def test_strengths_or_checkpoints_that_share_a_folder_are_refused(tmp_path, capsys):
    """`--scales 0.5,0.50000001` would write both to scale_0.5, checkpoint-2 and checkpoint-02 both
    to step_2: one line, exit 2, nothing written."""
    from reliability_helpers import one_line_exit_2

    out = tmp_path / "out"
    line = one_line_exit_2(
        ["sweep", "--scales", "0.5,0.50000001", "--adapter", "a", "--tasks", "drift", "--model", "m", "--output", out],
        capsys,
    )
    assert "0.5 and 0.50000001 would both be written to scale_0.5" in line
    run = tmp_path / "run"
    for name in ("checkpoint-2", "checkpoint-02", "checkpoint-3"):
        # Complete checkpoints (whole files, the trainer state written last): a damaged one is skipped.
        folder = run / "checkpoints" / name
        folder.mkdir(parents=True)
        (folder / "adapter_config.json").write_text("{}", encoding="utf-8")
        (folder / "trainer_state.json").write_text('{"global_step": 2}', encoding="utf-8")
        save_file({"x": torch.zeros(1)}, str(folder / "adapter_model.safetensors"))
    argv = ["evaluate", "--checkpoints", run, "--tasks", "drift", "--model", "m", "--output", out]
    line = one_line_exit_2(argv, capsys)
    assert "checkpoint-02 and checkpoint-2" in line and "both step 2" in line
    assert not out.exists()

    for strengths, phrase in (("[0.5, 0.50000001]", "would both be written"), ("[0.5, 0.5]", "listed twice")):
        spec = sweep_spec(tmp_path, out, strengths)
        line = one_line_exit_2(["run", spec, "--dry-run"], capsys)
        assert "error: evaluate.sweep.adapter: " in line and phrase in line
    assert not out.exists()
