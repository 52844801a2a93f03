"""Training configuration: the paper's presets, YAML files, --set, and one-line errors for typos."""

from pathlib import Path

import pytest

from alignment_tax.errors import UserError
from alignment_tax.trainers.config import default_config, load_config, load_yaml, parse_value
from alignment_tax.trainers.devices import gradient_accumulation, resolve_precision
from alignment_tax.trainers.presets import LORA_TARGETS

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("method", ["sft", "grpo", "embedder"])
def test_paper_yaml_is_the_built_in_preset(method):
    assert load_config(method, CONFIGS / "paper" / f"{method}.yaml") == default_config(method)
    raw = load_yaml((CONFIGS / "paper" / f"{method}.yaml").read_text(encoding="utf-8"))
    assert raw == {"method": method}  # it names the preset; its values are written in presets.py alone


@pytest.mark.parametrize("method", ["sft", "grpo", "embedder"])
def test_print_config_spells_out_the_preset(method, tmp_path, capsys):
    from alignment_tax.cli import main

    assert main(["train", "--method", method, "--print-config"]) == 0
    printed = capsys.readouterr().out
    assert load_yaml(printed) == default_config(method)  # spelled out in full, nothing left implicit
    (tmp_path / "printed.yaml").write_text(printed, encoding="utf-8")
    assert load_config(method, tmp_path / "printed.yaml") == default_config(method)
    main(["train", "--method", method, "--print-config", "--set", "training.seed=7"])
    assert load_yaml(capsys.readouterr().out)["training"]["seed"] == 7


def test_calibrate_tau_defaults_are_grpos_calibration(capsys):
    import argparse

    from alignment_tax.trainers.commands import register
    from alignment_tax.trainers.presets import calibration_settings

    commands = argparse.ArgumentParser().add_subparsers()
    register(commands)
    args = commands.choices["calibrate-tau"].parse_args(["--data", "d", "--embedder", "e"])
    flags = {"samples_per_prompt": "samples"}
    settings = calibration_settings(default_config("grpo"))
    assert {key: getattr(args, flags.get(key, key)) for key in settings} == settings
    # the paper's sampling (A.3) and our rule's quantile and interval width
    assert (settings["temperature"], settings["top_p"], settings["max_new_tokens"]) == (0.8, 0.9, 256)
    assert (settings["quantile"], settings["max_ci_width"]) == (0.25, 0.05)
    assert args.task == default_config("grpo")["task"] == "bo_zh_mt"
    # and their rules: a value the config would refuse, the flag refuses with the same words
    for key, bad in (("quantile", "1.5"), ("prompts", "0"), ("temperature", "0"), ("top_p", "1.5"), ("seed", "-1")):
        flag = "--" + flags.get(key, key).replace("_", "-")
        with pytest.raises(SystemExit):
            commands.choices["calibrate-tau"].parse_args(["--data", "d", "--embedder", "e", flag, bad])
        flag_error = capsys.readouterr().err
        with pytest.raises(UserError, match=f"calibration.{key} must be") as config_error:
            load_config("grpo", overrides=[f"calibration.{key}={bad}"])
        rule = str(config_error.value).split(f"calibration.{key} ")[1]
        assert f"{flag}: the value {rule.split(', got')[0]}" in flag_error, (flag_error, rule)


def test_paper_values():
    sft, grpo = default_config("sft"), default_config("grpo")
    for config in (sft, grpo):
        assert config["lora"] == {
            "r": 64,
            "alpha": 128,
            "dropout": 0.05,
            "target_modules": LORA_TARGETS,
            "bias": "none",
        }
        assert config["global_batch_size"] == 32 and config["precision"] == "auto"
    assert sft["training"]["num_train_epochs"] == 3 and sft["training"]["learning_rate"] == 2e-5
    assert sft["training"]["lr_scheduler_type"] == "cosine" and sft["training"]["warmup_steps"] == 0.1
    assert sft["training"]["optim"] == "adamw_torch" and sft["supervise"] == "assistant"
    training = grpo["training"]
    assert (training["num_train_epochs"], training["learning_rate"], training["num_generations"]) == (1, 5e-7, 8)
    assert (training["temperature"], training["top_p"], training["max_completion_length"]) == (0.8, 0.9, 256)
    assert training["beta"] > 0 and training["loss_type"] == "grpo"
    # the same prompt rule for both, so strong SFT and GRPO train on the same rows
    assert grpo["data"]["max_prompt_length"] == sft["data"]["max_prompt_length"] == 256
    assert grpo["reward"]["components"] == {"similarity": 1.5, "language": 1.0}
    assert grpo["data"]["skip"] == 5000 and grpo["training"]["beta"] == 0.04  # after the cold start's rows
    assert grpo["global_batch_size"] == 32 and grpo["training"]["per_device_train_batch_size"] == 16  # 16 × 2


def test_cold_start_extends_sft():
    cold = load_config("sft", CONFIGS / "paper" / "sft_cold_start.yaml")
    expected = default_config("sft")
    expected["data"]["limit"] = 5000
    expected["training"]["num_train_epochs"] = 2
    assert cold == expected
    # GRPO trains on the rows the cold start left: its skip is the cold start's limit, both written out.
    assert default_config("grpo")["data"]["skip"] == cold["data"]["limit"]


@pytest.mark.parametrize(
    "name, components",
    [
        ("embedding_only", {"similarity": 1.5}),
        ("embedding_lc", {"similarity": 1.5, "language": 1.0}),
        ("embedding_lc_bleu", {"similarity": 1.5, "language": 1.0, "bleu": 1.0}),
        ("bleu_only", {"bleu": 1.0}),
        ("embedding_lc_length", {"similarity": 1.5, "language": 1.0, "length": 1.0}),
    ],
)
def test_ablation_presets(name, components):
    config = load_config("grpo", CONFIGS / "ablations" / f"{name}.yaml")
    assert config["reward"]["components"] == components
    rest = {k: v for k, v in config.items() if k != "reward"}
    assert rest == {k: v for k, v in default_config("grpo").items() if k != "reward"}


def test_set_overrides_and_parsing():
    config = load_config(
        "grpo",
        overrides=[
            "training.learning_rate=1e-6",
            "tau=0.4",
            "reward.components.bleu=0.5",
            "lora.target_modules=[q_proj]",
            "num_generations=4",
            "data.skip=0",
        ],
        task="zh_bo_mt",
        max_steps=7,
    )
    assert config["training"]["learning_rate"] == 1e-6 and config["reward"]["tau"] == 0.4
    assert config["reward"]["components"] == {"similarity": 1.5, "language": 1.0, "bleu": 0.5}
    assert config["lora"]["target_modules"] == ["q_proj"] and config["training"]["num_generations"] == 4
    assert config["task"] == "zh_bo_mt" and config["training"]["max_steps"] == 7 and config["data"]["skip"] == 0
    assert parse_value("3") == 3 and parse_value("abc") == "abc" and parse_value("2.0e-5") == 2e-5


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            ["training.learnig_rate=1e-5"],
            r"unknown config key 'training.learnig_rate' \(did you mean 'learning_rate'\?\); valid keys .*learning_rate",
        ),
        (
            ["lora.rank=8"],
            r"unknown config key 'lora.rank'; valid keys in `lora`: alpha, bias, dropout, r, target_modules",
        ),
        (["reward.components.semantic=1"], r"valid keys in `reward.components`: bleu, language, length, similarity"),
        (["foo=1"], r"unknown config key 'foo'.*valid keys for --method grpo"),
        (["training.bf16=true"], r"training.bf16 cannot be set here: set `precision`"),
        (["precision=bf17"], r"precision must be one of auto, bf16, fp16, fp32"),
        (["task=cmrc2018"], r"unknown training task 'cmrc2018'"),
        (["reward.tau=1.5"], r"tau must be in \[-1, 1\)"),
        (["calibration.quantile=1.5"], r"calibration.quantile must be in \[0, 1\], got 1.5"),
        (["batch_size=4"], r"--set batch_size: ambiguous, it is a key of calibration, drift"),
        (["nonsense"], r"--set expects KEY=VALUE"),
    ],
)
def test_config_mistakes_are_one_line_user_errors(overrides, message):
    with pytest.raises(UserError, match=message) as info:
        load_config("grpo", overrides=overrides)
    assert "\n" not in str(info.value)


def test_yaml_file_mistakes(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("method: grpo\ntraining:\n  learning_rat: 1\n", encoding="utf-8")
    with pytest.raises(UserError, match="did you mean 'learning_rate'"):
        load_config("grpo", bad)
    with pytest.raises(UserError, match="is a config for --method grpo, not sft"):
        load_config("sft", bad)
    broken = tmp_path / "broken.yaml"
    broken.write_text("training: [1,\n", encoding="utf-8")
    with pytest.raises(UserError, match="invalid YAML"):
        load_config("sft", broken)
    with pytest.raises(UserError, match="config file not found"):
        load_config("sft", tmp_path / "missing.yaml")
    with pytest.raises(UserError, match="unknown method 'ppo'"):
        load_config("ppo")
    with pytest.raises(UserError, match="valid keys for --method sft"):
        load_config("sft", overrides=["reward.tau=0.5"])  # GRPO's section


def test_batch_arithmetic_and_precision():
    config = default_config("grpo")
    assert gradient_accumulation(config, 8, 1) == 2  # 32 = 16 × 2 (Appendix A.3)
    assert gradient_accumulation(config, 8, 2) == 1
    with pytest.raises(UserError, match="not a multiple of per_device_train_batch_size 16 × 3"):
        gradient_accumulation(config, 8, 3)
    config["training"]["gradient_accumulation_steps"] = 4
    with pytest.raises(UserError, match="contradicts global_batch_size 32"):
        gradient_accumulation(config, 8, 1)
    assert gradient_accumulation(default_config("sft"), 8, 2) == 2  # 2 GPUs × 8 × 2 (Appendix A.2)
    assert gradient_accumulation(default_config("embedder"), 8, 1) is None
    assert resolve_precision("auto", use_cpu=True) == "fp32"
    with pytest.raises(UserError, match="bf16 needs a GPU"):
        resolve_precision("bf16", use_cpu=True)


def test_module_examples_hold():
    import doctest

    import alignment_tax.trainers.calibrate as calibrate
    import alignment_tax.trainers.check_embedder as check_embedder
    import alignment_tax.trainers.config as config

    for module in (config, calibrate, check_embedder):
        failed, attempted = doctest.testmod(module)
        assert attempted > 0 and failed == 0, module.__name__
