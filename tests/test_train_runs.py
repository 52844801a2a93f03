"""SFT, GRPO and embedder training on the tiny models: what trains, what is written, resume, errors.

Each run is a few optimizer steps on real Tibetan–Chinese pairs (../shared/data) with tiny
batches, LoRA r=8, no activation checkpointing and fp32 on CPU.
"""

import json
import math
import os
from pathlib import Path

import pytest

from alignment_tax.errors import UserError

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

pytestmark = pytest.mark.slow

SMALL = [
    "lora.r=8",
    "lora.alpha=16",
    "training.activation_checkpointing=false",
    "training.logging_steps=1",
    "training.report_to=none",
    "training.dataloader_pin_memory=false",
    "data.skip=0",
]
SFT_SMALL = SMALL + [
    "training.per_device_train_batch_size=2",
    "global_batch_size=2",
    "training.max_length=256",
    "training.learning_rate=1e-3",
    "training.save_steps=1",
    "data.limit=16",
]
GRPO_SMALL = SMALL + [
    "training.per_device_train_batch_size=4",
    "global_batch_size=4",
    "training.num_generations=4",
    "training.max_completion_length=8",
    "training.learning_rate=1e-3",
    "training.save_strategy=no",
    "data.limit=8",
    "calibration.prompts=2",
    "calibration.samples_per_prompt=2",
]


def run_cli(argv, capsys):
    """`alignment-tax ...` in process: (exit code, stdout, stderr)."""
    from alignment_tax.cli import main

    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def pairs(shared_data):
    # Short lines of verse: short prompts keep each step fast.
    return shared_data / "bo_zh_mt" / "openpecha_bo_zh.jsonl"


@pytest.fixture(scope="module")
def sft_run(tiny_lm_dir, pairs, tmp_path_factory):
    from alignment_tax.trainers import load_config, train

    output = tmp_path_factory.mktemp("sft-run")
    config = load_config("sft", overrides=SFT_SMALL, max_steps=2)
    summary = train(config, model=str(tiny_lm_dir), train_data=str(pairs), output=str(output))
    return output, summary


def last_json(out):
    """The JSON summary a handler prints last (the trainers print their progress before it)."""
    start = out.rfind("\n{\n")
    return json.loads(out[start + 1 if start >= 0 else 0 :])


def read_log(path):
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


def lora_tensors(adapter_dir):
    from safetensors.torch import load_file

    return load_file(str(Path(adapter_dir) / "adapter_model.safetensors"))


def test_sft_supervises_only_the_assistant_turn(tiny_lm_dir, pairs, tmp_path):
    from alignment_tax.trainers import load_config
    from alignment_tax.trainers.sft import build_sft

    for supervise in ("assistant", "all"):
        config = load_config("sft", overrides=SFT_SMALL + [f"supervise={supervise}"], max_steps=1)
        built = build_sft(
            config, model=str(tiny_lm_dir), adapter=None, train_data=str(pairs), output=str(tmp_path / supervise)
        )
        row = built.trainer.train_dataset[0]
        supervised = [t for t, label in zip(row["input_ids"], row["labels"]) if label != -100]
        reference = built.data.examples[0]["reference"]
        if supervise == "assistant":
            assert built.tokenizer.decode(supervised) == reference + "<|im_end|>"
            assert built.trainer.args.completion_only_loss is True
        else:
            assert supervised == row["input_ids"]
        # The prompt is the evaluation task's own, as a user turn.
        from alignment_tax.tasks.prompts import render_prompt

        prompt = built.data.examples[0]["prompt"]
        assert prompt[0]["role"] == "user" and prompt[0]["content"].startswith("请把下面的藏文翻译成简体中文")
        assert prompt[0]["content"] == render_prompt("bo_zh_mt", {"source": prompt[0]["content"].split("藏文：")[-1]})


def test_sft_run_writes_adapter_effective_config_and_log(sft_run):
    output, summary = sft_run
    assert summary["global_step"] == 2
    assert (output / "adapter" / "adapter_config.json").is_file()
    record = json.loads((output / "train_config.json").read_text(encoding="utf-8"))
    args = record["training_args"]
    assert record["status"] == "finished" and record["config"]["method"] == "sft"
    assert args["class"] == "trl.SFTConfig" and args["bf16"] is False and args["completion_only_loss"] is True
    assert args["assistant_only_loss"] is False  # the completion mask alone: any chat template trains
    assert "adam_beta1" in args and "max_length" in args  # TRL's defaults are recorded too
    assert record["resolved"]["precision"] == "fp32" and record["peft_config"]["r"] == 8
    assert set(record["peft_config"]["target_modules"]) == {
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    }
    log = read_log(output / "train_log.jsonl")
    assert [e["step"] for e in log if "loss" in e] == [1, 2]


def test_grpo_from_the_sft_adapter_trains_it_and_logs_every_reward(
    sft_run, tiny_lm_dir, tiny_embedder_dir, pairs, tmp_path
):
    from alignment_tax.trainers import load_config, train

    sft_output, _ = sft_run
    sft_adapter = sft_output / "adapter"
    before = lora_tensors(sft_adapter)
    overrides = GRPO_SMALL + [
        "reward.components={similarity: 1.5, language: 1.0, bleu: 0.5, length: 0.5}",
        "training.save_strategy=steps",
        "training.save_steps=2",
        "training.disable_dropout=true",
    ]  # no LoRA dropout: KL is exactly 0 at the start
    summary = train(
        load_config("grpo", overrides=overrides, max_steps=2),
        model=str(tiny_lm_dir),
        adapter=str(sft_adapter),
        train_data=str(pairs),
        output=str(tmp_path),
        embedder=str(tiny_embedder_dir),
    )
    assert summary["global_step"] == 2
    after = lora_tensors(tmp_path / "adapter")
    assert set(after) == set(before)  # the same adapter, trained further; TRL's "ref" copy is not saved
    assert any(not (after[k] == before[k]).all() for k in before)
    assert not (tmp_path / "adapter" / "ref").exists()
    steps = [e for e in read_log(tmp_path / "train_log.jsonl") if "reward" in e]
    assert [e["step"] for e in steps] == [1, 2]
    for entry in steps:
        for name in ("similarity", "language", "bleu", "length"):
            assert f"rewards/{name}/mean" in entry and f"rewards/{name}/std" in entry
        assert "kl" in entry and math.isfinite(entry["reward"])
    record = json.loads((tmp_path / "train_config.json").read_text(encoding="utf-8"))
    args = record["training_args"]
    assert args["beta"] > 0 and args["loss_type"] == "grpo" and args["bf16"] is False
    assert args["reward_weights"] == [1.5, 1.0, 0.5, 0.5]
    assert (args["temperature"], args["top_p"]) == (0.8, 0.9)
    resolved = record["resolved"]
    assert record["config"]["reward"]["tau"] == "auto" and -1 <= resolved["tau"] < 1
    # τ is the calibration's quantile of its similarities (capped at 0.99), and lies within them
    calibration = resolved["calibration"]
    similarity = calibration["similarity"]
    assert calibration["tau"] == resolved["tau"]
    quantile_key = f"p{round(calibration['quantile'] * 100)}"
    assert resolved["tau"] == pytest.approx(min(similarity[quantile_key], 0.99), abs=1e-6)
    assert similarity["min"] <= resolved["tau"] <= similarity["max"]
    assert resolved["calibration"]["prompts"] == 2 and resolved["reference_policy"] == "frozen copy of --adapter"
    assert [c["name"] for c in record["reward"]["components"]] == ["similarity", "language", "bleu", "length"]
    sft_record = json.loads((sft_output / "train_config.json").read_text(encoding="utf-8"))
    for cap in (record["train_data"]["prompt_cap"], sft_record["train_data"]["prompt_cap"]):
        # one rule for both methods, and what it did, in each run's record
        assert cap["max_prompt_length"] == 256 and cap["rule"].startswith("drop prompts over the cap")
        assert cap["dropped"] == cap["over_cap"] and cap["examples"] - cap["dropped"] > 0

    # Resuming keeps the trained adapter (not the SFT one it started from) against the SFT reference,
    # and the τ of the first start.
    summary = train(
        load_config("grpo", overrides=overrides, max_steps=3),
        model=str(tiny_lm_dir),
        adapter=str(sft_adapter),
        train_data=str(pairs),
        output=str(tmp_path),
        embedder=str(tiny_embedder_dir),
    )
    assert summary["resumed_from"].endswith("checkpoint-2") and summary["global_step"] == 3
    assert summary["tau"] == resolved["tau"]
    steps = {e["step"]: e for e in read_log(tmp_path / "train_log.jsonl") if "reward" in e}
    assert sorted(steps) == [1, 2, 3] and steps[1]["kl"] == 0 and steps[3]["kl"] > 0


def test_resume_continues_the_step_count(sft_run, tiny_lm_dir, pairs):
    from alignment_tax.trainers import load_config, train

    output, _ = sft_run
    assert (output / "checkpoints" / "checkpoint-2").is_dir()
    config = load_config("sft", overrides=SFT_SMALL, max_steps=3)
    summary = train(config, model=str(tiny_lm_dir), train_data=str(pairs), output=str(output))
    assert summary["resumed_from"].endswith("checkpoint-2") and summary["global_step"] == 3
    assert [e["step"] for e in read_log(output / "train_log.jsonl") if "loss" in e] == [1, 2, 3]
    changed = load_config("sft", overrides=SFT_SMALL + ["training.learning_rate=0.5"], max_steps=4)
    with pytest.raises(UserError, match="different configuration.*training.learning_rate"):
        train(changed, model=str(tiny_lm_dir), train_data=str(pairs), output=str(output))


def test_bad_input_is_one_line_and_exit_2(tiny_lm_dir, tiny_adapter_dir, pairs, tmp_path, capsys):
    no_reference = tmp_path / "no_zh.jsonl"
    no_reference.write_text(
        '{"id": "1", "bo": "ཀ་ཁ", "en": "a"}\n{"id": "2", "bo": "ག", "en": "b"}\n', encoding="utf-8"
    )
    base = ["train", "--model", tiny_lm_dir, "--output", tmp_path / "run"]
    cases = [
        (
            base + ["--method", "ppo", "--train-data", pairs],
            "unknown --method 'ppo'; choose one of sft, grpo, embedder",
        ),
        (base + ["--method", "grpo", "--train-data", pairs, "--set", "data.skip=0"], "needs --embedder PATH"),
        (
            base + ["--method", "grpo", "--train-data", pairs, "--embedder", tmp_path / "nope", "--set", "data.skip=0"],
            "embedder not found",
        ),
        (
            base + ["--method", "grpo", "--train-data", no_reference, "--embedder", "x", "--set", "data.skip=0"],
            "no target column 'zh'",
        ),
        (
            base + ["--method", "sft", "--train-data", pairs, "--set", "training.learnig_rate=1"],
            "did you mean 'learning_rate'",
        ),
        (base + ["--method", "sft", "--train-data", pairs, "--adapter", tmp_path / "missing"], "adapter not found"),
        (base + ["--method", "sft", "--train-data", tmp_path / "missing.jsonl"], "file not found"),
        (
            base + ["--method", "grpo", "--train-data", pairs, "--embedder", "x"],
            "data.skip is 5000 but the data has 2573 rows",
        ),
        (
            ["calibrate-tau", "--adapter", tiny_adapter_dir, "--data", pairs, "--embedder", tmp_path / "nope"],
            "embedder not found",
        ),
        (["check-embedder", "--embedder", tmp_path / "nope", "--pairs", pairs], "embedder not found"),
    ]
    for argv, message in cases:
        code, out, err = run_cli(argv, capsys)
        assert code == 2, (argv, err)
        assert err.count("\n") == 1 and message in err, err


def test_require_reference():
    from alignment_tax.trainers.training_examples import require_reference

    with pytest.raises(UserError, match="no 'reference'"):
        require_reference([{"prompt": [], "reference": ""}], "data.jsonl")


def test_cli_main_runs_train(tmp_path, capsys, pairs, tiny_lm_dir):
    from alignment_tax.cli import main

    assert (
        main(
            [
                "train",
                "--method",
                "nope",
                "--model",
                str(tiny_lm_dir),
                "--train-data",
                str(pairs),
                "--output",
                str(tmp_path),
            ]
        )
        == 2
    )
    assert "unknown --method 'nope'" in capsys.readouterr().err


def test_embedder_training_then_check_embedder(tiny_embedder_dir, pairs, tmp_path, capsys):
    code, out, err = run_cli(
        [
            "train",
            "--method",
            "embedder",
            "--model",
            tiny_embedder_dir,
            "--train-data",
            pairs,
            "--output",
            tmp_path,
            "--max-steps",
            "2",
            "--set",
            "training.per_device_train_batch_size=4",
            "data.limit=16",
            "training.logging_steps=1",
            "training.dataloader_pin_memory=false",
        ],
        capsys,
    )
    assert code == 0, err
    summary = last_json(out)
    assert summary["global_step"] == 2 and (tmp_path / "embedder" / "modules.json").is_file()
    record = json.loads((tmp_path / "train_config.json").read_text(encoding="utf-8"))
    assert record["loss"]["class"] == "MultipleNegativesRankingLoss"
    assert record["training_args"]["batch_sampler"] == "no_duplicates"
    code, out, err = run_cli(
        [
            "check-embedder",
            "--embedder",
            tmp_path / "embedder",
            "--pairs",
            pairs,
            "--limit",
            "30",
            "--output",
            tmp_path / "check.json",
        ],
        capsys,
    )
    assert code == 0, err
    result = last_json(out)
    assert -1 <= result["spearman"] <= 1 and result["n_candidates"] == 90
    # ρ recomputed here: the same graded pairs, encoded with sentence-transformers, ranked by scipy
    import numpy as np
    from scipy.stats import spearmanr
    from sentence_transformers import SentenceTransformer

    from alignment_tax.data.parallel import load_parallel
    from alignment_tax.trainers.check_embedder import build_graded_pairs

    read = load_parallel(str(pairs), "bo", "zh", split="train", skip_empty=True)[:30]
    items = build_graded_pairs([(p.source, p.target) for p in read], 0.5, 0, "zh")
    encoder = SentenceTransformer(str(tmp_path / "embedder"), device="cpu")
    sources = encoder.encode([item["source"] for item in items], normalize_embeddings=True)
    candidates = [candidate for item in items for candidate in item["candidates"]]
    vectors = encoder.encode([text for _, text in candidates], normalize_embeddings=True)
    cosines = np.sum(np.repeat(sources, 3, axis=0) * vectors, axis=1)
    rho = spearmanr(cosines, [grade for grade, _ in candidates])[0]
    assert result["spearman"] == pytest.approx(float(rho), abs=1e-3)
    assert set(result["margins"]) >= {"true_minus_corrupted", "corrupted_minus_unrelated"}
    assert json.loads((tmp_path / "check.json").read_text(encoding="utf-8"))["spearman"] == result["spearman"]
    # the reward's comparisons: Chinese with Chinese, Tibetan with Tibetan, reported apart
    assert set(result["within_language"]) == {"zh", "bo"}
    for within in result["within_language"].values():
        assert within["n_candidates"] == 90 and -1 <= within["spearman"] <= 1


def test_check_embedder_ranks_graded_pairs_with_a_lexical_encoder():
    """With an encoder that sees shared characters, true > corrupted > unrelated holds and ρ is high."""
    import numpy as np

    from alignment_tax.trainers.check_embedder import build_graded_pairs, score_graded

    class CharBag:
        def encode(self, texts, **kwargs):
            vectors = np.zeros((len(texts), 4096))
            for row, text in enumerate(texts):
                for char in text:
                    vectors[row, ord(char) % 4096] += 1
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            return vectors / np.where(norms == 0, 1, norms)

    pairs = [(f"他们在第{i}个城市", f"他们在第{i}个城市") for i in range(3)] + [
        ("今天天气很好", "今天天气很好"),
        ("我喜欢读书", "我喜欢读书"),
        ("火车开得很快", "火车开得很快"),
    ]
    result = score_graded(CharBag(), build_graded_pairs(pairs, 0.5, seed=1, language="zh"))
    assert result["spearman"] > 0.7
    assert (
        result["mean_similarity"]["true"]
        > result["mean_similarity"]["corrupted"]
        > result["mean_similarity"]["unrelated"]
    )


def test_within_language_graded_pairs():
    """Same-language anchors: the light corruption keeps more of the sentence than the heavy one."""
    import numpy as np

    from alignment_tax.metrics.segmentation import segment
    from alignment_tax.trainers.check_embedder import build_graded_within, score_graded

    texts = [
        "今天天气很好我们去公园散步",
        "我喜欢在图书馆读书学习",
        "火车开得很快窗外风景很美",
        "他们在第三个城市住了十年",
    ]
    items = build_graded_within(texts, fraction=0.5, light=0.1, seed=0, language="zh")
    for item, text in zip(items, texts):
        (g2, light), (g1, heavy), (g0, other) = item["candidates"]
        assert (g2, g1, g0) == (2, 1, 0) and item["source"] == text and other != text

        def kept(candidate, text=text):
            return sum(a == b for a, b in zip(segment(candidate, True, False), segment(text, True, False)))

        assert kept(light) > kept(heavy)
    tibetan = ["བཀྲ་ཤིས་བདེ་ལེགས་ཞུ་རྒྱུ་ཡིན།", "ང་ཚོ་སློབ་གྲྭར་འགྲོ་གི་ཡོད།", "ཁ་ལག་ཞིམ་པོ་འདུག", "དེ་རིང་གནམ་གཤིས་ཡག་པོ་འདུག"]
    bo_items = build_graded_within(tibetan, 0.5, 0.1, 0, "bo")
    assert all("་" in candidate for item in bo_items for _, candidate in item["candidates"])

    class CharBag:
        def encode(self, batch, **kwargs):
            vectors = np.zeros((len(batch), 4096))
            for row, text in enumerate(batch):
                for char in text:
                    vectors[row, ord(char) % 4096] += 1
            return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    result = score_graded(CharBag(), items)
    assert (
        result["mean_similarity"]["true"]
        > result["mean_similarity"]["corrupted"]
        > result["mean_similarity"]["unrelated"]
    )


def test_calibrate_tau_reports_the_rule_and_distribution(sft_run, tiny_lm_dir, tiny_embedder_dir, pairs, capsys):
    sft_output, _ = sft_run
    code, out, err = run_cli(
        [
            "calibrate-tau",
            "--model",
            tiny_lm_dir,
            "--adapter",
            sft_output / "adapter",
            "--data",
            pairs,
            "--embedder",
            tiny_embedder_dir,
            "--prompts",
            "3",
            "--samples",
            "2",
            "--max-new-tokens",
            "8",
            "--quantile",
            "0.5",
        ],
        capsys,
    )
    assert code == 0, err
    result = last_json(out)
    assert result["quantile"] == 0.5 and result["similarity"]["n"] == 6
    assert result["tau"] == pytest.approx(min(result["similarity"]["p50"], 0.99), abs=1e-6)
    assert result["suggested_set"] == f"--set reward.tau={result['tau']}"
    interval = result["tau_ci"]
    assert interval["prompts"] == 3 and interval["resampled"] == "prompts"
    assert interval["low"] <= result["tau"] <= interval["high"]
    # 3 prompts cannot pin tau down to 0.05 unless every similarity is the same
    assert (result["warning"] is not None) == (interval["width"] > 0.05)


def test_drift_callback_logs_with_the_step(tiny_lm_dir, pairs, shared_data, tmp_path):
    from alignment_tax.trainers import load_config
    from alignment_tax.trainers.callbacks import DriftCallback
    from alignment_tax.trainers.sft import build_sft, finish

    calls = []

    def stand_in(model, tokenizer, texts, batch_size=8, max_length=None):
        calls.append((len(texts), batch_size, max_length, model.training))
        return {"kl": {"mean": 0.5, "p50": 0.4, "p90": 0.9, "p99": 1.0}, "delta_nll": {"mean": 0.1}, "n_tokens": 12}

    config = load_config(
        "sft",
        overrides=SFT_SMALL
        + [
            "drift.every=2",
            f"drift.data={shared_data / 'cmrc2018' / 'cmrc2018_dev.json'}",
            "drift.limit=3",
            f"drift.cmrc_data={shared_data / 'cmrc2018' / 'cmrc2018_trial.json'}",
            "drift.cmrc_limit=2",
            "drift.cmrc_max_new_tokens=4",
            "training.save_strategy=no",
        ],
        max_steps=4,
    )
    built = build_sft(config, model=str(tiny_lm_dir), adapter=None, train_data=str(pairs), output=str(tmp_path))
    drift = next(c for c in built.trainer.callback_handler.callbacks if isinstance(c, DriftCallback))
    drift.measure = stand_in
    finish(built)
    assert calls == [(3, 8, 512, False), (3, 8, 512, False)]  # eval mode while measuring
    entries = {e["step"]: e for e in read_log(tmp_path / "train_log.jsonl") if "loss" in e}
    for step in (2, 4):
        assert entries[step]["drift/kl/mean"] == 0.5 and entries[step]["drift/kl/p90"] == 0.9
        assert entries[step]["drift/delta_nll/mean"] == 0.1 and entries[step]["drift/n_tokens"] == 12
        # the mean over 2 questions of 0/1 EM, in percent; F1 is at least EM on every question
        em, f1 = entries[step]["probe/cmrc_em"], entries[step]["probe/cmrc_f1"]
        assert em in (0.0, 50.0, 100.0) and em <= f1 <= 100
    assert "drift/kl/mean" not in entries[1] and "drift/kl/mean" not in entries[3]


def test_drift_callback_with_the_real_measure(tiny_lm_dir, tiny_adapter_dir, shared_data):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerControl, TrainerState, TrainingArguments

    from alignment_tax.data.corpus import load_corpus
    from alignment_tax.trainers.callbacks import DriftCallback

    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_lm_dir), tiny_adapter_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_lm_dir)
    texts = load_corpus(shared_data / "cmrc2018" / "cmrc2018_dev.json")[:2]
    callback = DriftCallback(texts, every=1, tokenizer=tokenizer, max_length=64)
    state = TrainerState()
    state.global_step = 1
    callback.on_step_end(TrainingArguments(output_dir="unused"), state, TrainerControl(), model=model)
    entry = state.log_history[-1]
    for key in ("drift/kl/mean", "drift/kl/p50", "drift/kl/p90", "drift/kl/p99", "drift/delta_nll/mean"):
        assert key in entry and math.isfinite(entry[key])
    assert entry["drift/kl/p50"] <= entry["drift/kl/p90"] <= entry["drift/kl/p99"]
    assert entry["drift/kl/mean"] > 0  # a random adapter moves the distribution
    assert not model.training and callback.measured_steps == [1]


def test_evaluate_checkpoints_gives_the_tax_over_training(sft_run, tiny_lm_dir, shared_data, tmp_path, capsys):
    """Every saved checkpoint and the final adapter evaluated against one base; the report plots them by step."""
    from alignment_tax.evaluation.checkpoint_series import saved_checkpoints
    from alignment_tax.reports import build_report

    run_dir, _ = sft_run
    # The run's last two checkpoints (earlier tests in this module may have resumed it for more steps).
    steps = [step for step, _ in saved_checkpoints(run_dir)]
    assert len(steps) == 2 and steps == sorted(steps)
    first, last = (f"step_{step}" for step in steps)
    out = tmp_path / "series"
    code, _, err = run_cli(
        [
            "evaluate",
            "--checkpoints",
            run_dir,
            "--model",
            tiny_lm_dir,
            "--tasks",
            "bo_zh_mt,cmrc2018,drift",
            "--limit",
            "3",
            "--batch-size",
            "4",
            "--device",
            "cpu",
            "--drift-window",
            "64",
            "--data-dir",
            shared_data,
            "--output",
            out,
        ],
        capsys,
    )
    assert code == 0, err
    results = {name: json.loads((out / name / "results.json").read_text()) for name in (first, last, "final")}
    assert [results[n]["config"]["checkpoint_step"] for n in (first, last, "final")] == [*steps, None]
    assert len(list((out / "_base").iterdir())) == 1  # one base for the whole series
    # the final adapter is the last checkpoint's weights: the same outputs and drift
    assert results["final"]["drift"]["kl"] == results[last]["drift"]["kl"]
    report = tmp_path / "report.html"
    build_report([out / first, out / last, out / "final"], out=str(report))
    html = report.read_text(encoding="utf-8")
    assert "over training" in html and "Drift over training: mean KL to the base" in html
    # what each run trained with, from the run's train_config.json
    assert '<h2 id="settings">Training settings</h2>' in html and "0.001" in html  # SFT_SMALL's learning rate
    build_report([out / first, out / "final"], out=str(tmp_path / "report.md"))
    markdown = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "## Training settings" in markdown and f"| {first} | sft |" in markdown
    code, _, err = run_cli(
        ["evaluate", "--checkpoints", tmp_path, "--tasks", "drift", "--output", tmp_path / "x"], capsys
    )
    assert code == 2 and "no checkpoint-N folder" in err
