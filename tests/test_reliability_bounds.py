"""Values out of bounds are one line, exit 2, before any work: a seed, a LoRA rank, a generation cap,
and a model of the wrong kind. Each used to be a traceback, some after minutes or after paying for
verdicts."""

from __future__ import annotations

import pytest
from reliability_helpers import one_line_exit_2

from alignment_tax.errors import UserError

pytestmark = pytest.mark.slow  # builds tiny models


def test_a_negative_judge_seed_is_refused_before_any_request(where, capsys, monkeypatch):
    from alignment_tax.judge import pipeline

    def no_calls(options):
        raise AssertionError("a judge was built: requests would follow")

    monkeypatch.setattr(pipeline, "make_backend", no_calls)
    argv = ["judge", "--a", where["run"], "--b", where["run"], "--task", "bo_zh_mt", "--seed", "-5"]
    line = one_line_exit_2([*argv, "--output", where["tmp"] / "j.json"], capsys)
    assert "--seed" in line and "must be between 0 and 4294967295, got -5" in line
    # A seed that reaches the pipeline some other way (a spec, a caller) is checked before any request too.
    output = where["tmp"] / "j.json"
    options = pipeline.JudgeOptions(str(where["run"]), str(where["run"]), "bo_zh_mt", str(output), seed=-5)
    with pytest.raises(UserError, match="--seed must be between 0 and 4294967295, got -5"):
        pipeline.run_judge(options)
    assert not output.exists()


def test_a_lora_rank_above_the_models_width(tiny_lm_dir, tmp_path, capsys):
    out = tmp_path / "adapter"
    argv = ["make-tiny-model", out, "--kind", "adapter", "--base-model", tiny_lm_dir, "--rank", "100000000"]
    line = one_line_exit_2(argv, capsys)
    assert f"LoRA rank 100000000 is above the hidden size of {tiny_lm_dir} (64)" in line
    assert not out.exists()


def test_an_embedder_as_the_adapters_base(tiny_embedder_dir, tmp_path, capsys):
    out = tmp_path / "adapter"
    argv = ["make-tiny-model", out, "--kind", "adapter", "--base-model", tiny_embedder_dir]
    line = one_line_exit_2(argv, capsys)
    assert f"{tiny_embedder_dir} is not a causal language model (its config names BertModel)" in line
    assert not out.exists()


@pytest.mark.parametrize("cap", ["2048", "9223372036854775807"])
def test_a_generation_cap_beyond_the_models_context(cap, tiny_lm_dir, shared_data, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["evaluate", "--model", tiny_lm_dir, "--tasks", "cmrc2018", "--limit", "1", "--device", "cpu"]
    argv += ["--data-dir", shared_data, "--output", out, "--max-gen-toks", f"cmrc2018={cap}"]
    line = one_line_exit_2(argv, capsys)
    assert f"--max-gen-toks cmrc2018={cap}: the model's context is 2048 tokens" in line
    assert not out.exists()


def test_a_prompt_and_its_cap_beyond_the_context_stop_before_any_generation(
    tiny_lm_dir, shared_data, tmp_path, capsys, monkeypatch
):
    # 1800 < 2048 passes the cap's own bound, but CMRC prompts plus 1800 do not fit: lm-eval would
    # keep only the prompts' last tokens. Nothing may be generated, and the line says what fits.
    from lm_eval.models.huggingface import HFLM

    from alignment_tax.cli import main

    def no_generation(self, requests, disable_tqdm=False):
        raise AssertionError(f"{len(requests)} prompts were generated, some cut")

    monkeypatch.setattr(HFLM, "generate_until", no_generation)
    argv = ["evaluate", "--model", str(tiny_lm_dir), "--tasks", "cmrc2018", "--limit", "4", "--device", "cpu"]
    argv += ["--data-dir", str(shared_data)]
    assert main([*argv, "--output", str(tmp_path / "out"), "--max-gen-toks", "cmrc2018=1800"]) == 2
    # The model has loaded (its progress bars are on stderr): the error is the one line that says so.
    errors = [text for text in capsys.readouterr().err.splitlines() if text.startswith("alignment-tax: error: ")]
    assert len(errors) == 1
    line = errors[0].removeprefix("alignment-tax: error: ")
    assert line.startswith("cmrc2018: a prompt of ") and "1800-token generation cap exceed the model's 2048" in line
    room = int(line.rsplit("--max-gen-toks cmrc2018=", 1)[1])
    length = int(line.split("a prompt of ", 1)[1].split(" ", 1)[0])
    assert room == 2048 - length and 0 < room < 1800
    # The cap the line offers fits: the same run with it goes through.
    monkeypatch.undo()
    assert main([*argv, "--output", str(tmp_path / "fits"), "--max-gen-toks", f"cmrc2018={room}"]) == 0
