"""SFT and GRPO under `accelerate launch` with two CPU processes (gloo), on the tiny model.

accelerate 1.15's `accelerate launch --num_processes 2 --cpu` starts ONE process (its simple
launcher ignores --num_processes without an MPI hostfile), so this launches two torchrun
workers with the shipped `configs/accelerate/multi_gpu.yaml` and `--num_processes 2`, and keeps
them on the CPU with `training.use_cpu=true` (the trainers also set it by themselves when torch
sees no GPU); each run's record must then say world_size 2. About a minute on 2 cores.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ACCELERATE_CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "accelerate"

COMMON = [
    "lora.r=8",
    "lora.alpha=16",
    "training.activation_checkpointing=false",
    "training.logging_steps=1",
    "training.dataloader_pin_memory=false",
    "training.use_cpu=true",
    "data.limit=16",
    "data.skip=0",
]


def free_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(args, tmp_path):
    accelerate = Path(sys.executable).with_name("accelerate")
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf"),
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    command = [
        str(accelerate),
        "launch",
        "--config_file",
        str(ACCELERATE_CONFIGS / "multi_gpu.yaml"),
        "--num_processes",
        "2",
        "--main_process_port",
        str(free_port()),
        "-m",
        "alignment_tax.trainers",
        *map(str, args),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.mark.skipif(not Path(sys.executable).with_name("accelerate").exists(), reason="accelerate CLI not installed")
def test_sft_then_grpo_on_two_processes(tiny_lm_dir, tiny_embedder_dir, shared_data, tmp_path):
    pairs = shared_data / "bo_zh_mt" / "openpecha_bo_zh.jsonl"
    sft = tmp_path / "sft"
    launch(
        [
            "train",
            "--method",
            "sft",
            "--model",
            tiny_lm_dir,
            "--train-data",
            pairs,
            "--output",
            sft,
            "--max-steps",
            "2",
            "--set",
            *COMMON,
            "training.per_device_train_batch_size=2",
            "global_batch_size=4",
            "training.save_strategy=no",
        ],
        tmp_path,
    )
    record = json.loads((sft / "train_config.json").read_text(encoding="utf-8"))
    assert record["world_size"] == 2 and record["global_step"] == 2
    assert record["resolved"]["gradient_accumulation_steps"] == 1  # 4 = 2 processes × 2 × 1
    assert (sft / "adapter" / "adapter_model.safetensors").is_file()

    grpo = tmp_path / "grpo"
    launch(
        [
            "train",
            "--method",
            "grpo",
            "--adapter",
            sft / "adapter",
            "--embedder",
            tiny_embedder_dir,
            "--train-data",
            pairs,
            "--output",
            grpo,
            "--max-steps",
            "2",
            "--set",
            *COMMON,
            "training.per_device_train_batch_size=4",
            "global_batch_size=8",
            "training.num_generations=4",
            "training.max_completion_length=8",
            "training.save_strategy=no",
            "reward.tau=0.3",
        ],
        tmp_path,
    )
    record = json.loads((grpo / "train_config.json").read_text(encoding="utf-8"))
    assert record["world_size"] == 2 and record["global_step"] == 2
    assert record["resolved"]["prompts_per_step"] == 2  # 8 completions = 2 prompts × 4 generations
    log = [json.loads(line) for line in (grpo / "train_log.jsonl").read_text(encoding="utf-8").splitlines()]
    steps = [entry for entry in log if "reward" in entry]
    assert [entry["step"] for entry in steps] == [1, 2]
    assert all("rewards/similarity/mean" in e and "rewards/language/mean" in e for e in steps)


def test_shipped_accelerate_configs_leave_precision_and_accumulation_to_the_trainer():
    from accelerate.commands.config.config_args import load_config_from_file

    multi_gpu = load_config_from_file(str(ACCELERATE_CONFIGS / "multi_gpu.yaml"))
    zero2 = load_config_from_file(str(ACCELERATE_CONFIGS / "deepspeed_zero2.yaml"))
    assert (multi_gpu.distributed_type, zero2.distributed_type) == ("MULTI_GPU", "DEEPSPEED")
    assert multi_gpu.mixed_precision == zero2.mixed_precision == "no"
    assert zero2.deepspeed_config["zero_stage"] == 2
    # A fixed accumulation here would contradict the one the trainer derives from global_batch_size.
    assert "gradient_accumulation_steps" not in zero2.deepspeed_config
