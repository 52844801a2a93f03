"""GRPO with semantic rewards over TRL's ``GRPOTrainer`` (paper §3.2 stage 2, §3.3–3.4, §4.1, A.3).

Starts from the cold-start SFT adapter (``--adapter``), loaded with ``is_trainable=True``;
with ``beta > 0`` TRL keeps a frozen copy of that adapter as the reference policy, so the KL
term constrains the update relative to the SFT policy. The rewards are passed to TRL as
separate functions with ``reward_weights`` (``reward.components``), so TRL logs
``rewards/<component>/mean`` and ``/std`` for each, and the weighted sum as ``reward``, every
logging step. Completions are scored after being cut at the task's stop strings (what
``evaluate`` would score). Every reference is encoded once before training.

``tau: auto`` calibrates τ from the starting policy before training (see
:mod:`alignment_tax.trainers.calibrate`); a resumed run reuses the τ of its first start.

``training.use_vllm: true`` (GPU only, needs the ``vllm`` extra) samples completions with vLLM,
``vllm_mode: colocate`` in the training processes or ``server`` against ``trl vllm-serve``;
every other ``vllm_*`` option of TRL's ``GRPOConfig`` passes through ``training``.
"""

from __future__ import annotations

from typing import Any

from alignment_tax.errors import UserError
from alignment_tax.rewards.base import REFERENCE_COLUMN
from alignment_tax.trainers.config import make_training_args
from alignment_tax.trainers.devices import (
    device_settings,
    gradient_accumulation,
    is_main_process,
    resolve_precision,
    world_size,
)
from alignment_tax.trainers.lora_model import (
    attach_trainable_adapter,
    load_lm_for_training,
    lora_config,
    peft_record,
    trainable_parameters,
)
from alignment_tax.trainers.run_folder import (
    args_dict,
    base_record,
    check_resumable,
    check_same_inputs,
    last_checkpoint,
    prepare_output,
)
from alignment_tax.trainers.sft import Built, _add_callbacks, _make_trainer, finish
from alignment_tax.trainers.training_examples import apply_prompt_cap, load_training_data, require_reference


def _resolve_tau(config, record_before, model, tokenizer, data, reward, chat_kwargs) -> tuple[float, dict | None]:
    tau = config["reward"]["tau"]
    if tau != "auto":
        return float(tau), None
    if record_before and (record_before.get("resolved") or {}).get("tau") is not None:
        return float(record_before["resolved"]["tau"]), record_before["resolved"].get("calibration")
    from alignment_tax.trainers.calibrate import calibrate_from_model
    from alignment_tax.trainers.presets import calibration_settings

    similarity = reward.component("similarity") if "similarity" in reward.names else None
    if similarity is None:
        return 0.0, None
    result = None
    if is_main_process():
        result = calibrate_from_model(
            model,
            tokenizer,
            data.examples,
            similarity,
            data.target_lang,
            data.stop,
            chat_template_kwargs=chat_kwargs,
            **calibration_settings(config),
        )
    if world_size() > 1:
        # Every process scores with the same τ: the main process's, sent to the others.
        from accelerate.utils import broadcast_object_list

        holder = [result]
        broadcast_object_list(holder, from_process=0)
        result = holder[0]
    return float(result["tau"]), result


def _to_local_gpu(network: Any, use_cpu: bool) -> None:
    """Sample for calibration where training will run (the trainer would move the model there anyway)."""
    import os

    import torch

    if torch.cuda.is_available() and not use_cpu:
        network.to(f"cuda:{int(os.environ.get('LOCAL_RANK', '0') or 0)}")


def build_grpo(
    config: dict[str, Any],
    *,
    model: str | None,
    adapter: str | None,
    train_data: str,
    output: str,
    embedder: str | None,
) -> Built:
    """Load data, policy and rewards, resolve τ, and build the ``GRPOTrainer`` (nothing trained yet)."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from alignment_tax.rewards import build_reward

    paths = prepare_output(output)
    checkpoint = last_checkpoint(paths)
    before = check_resumable(paths, config, checkpoint)
    training = device_settings(dict(config["training"]))
    reward_settings = config["reward"]
    components = {k: float(v) for k, v in reward_settings["components"].items() if float(v) != 0.0}
    if components.get("similarity") and not embedder:
        raise UserError(
            "the similarity reward needs --embedder PATH (a sentence-transformers model; train one with "
            "`alignment-tax train --method embedder`), or leave it out with --set reward.components.similarity=0"
        )
    precision = resolve_precision(config["precision"], bool(training.get("use_cpu")))
    processes = world_size()
    accumulation = gradient_accumulation(config, 8, processes)

    data = load_training_data(config["task"], train_data, config["data"])
    require_reference(data.examples, data.source)
    language = reward_settings.get("language") or data.target_lang
    stop = data.stop if reward_settings.get("truncate_at_stop", True) else []
    reward = build_reward(
        components,
        embedder=embedder,
        tau=0.0,
        language=language,
        stop=stop,
        embedder_batch_size=int(reward_settings["embedder_batch_size"]),
        length_tolerance=float(reward_settings["length_tolerance"]),
        length_falloff=float(reward_settings["length_falloff"]),
        language_tolerance=reward_settings.get("language_tolerance"),
        device="cpu" if training.get("use_cpu") else None,
    )
    if "similarity" in reward.names:
        reward.component("similarity").load()  # a missing embedder fails now, not at the first step

    network, tokenizer, base_name = load_lm_for_training(model, adapter, precision, padding_side="left")
    check_same_inputs(before, paths, data.sha256, model=base_name, adapter_init=adapter, embedder=embedder)
    peft_config = None
    if adapter is not None:
        network = attach_trainable_adapter(network, adapter, base_name)
    else:
        peft_config = lora_config(config["lora"])

    chat_kwargs = {"enable_thinking": bool(config.get("enable_thinking"))}
    apply_prompt_cap(data, tokenizer, config["data"].get("max_prompt_length"), chat_kwargs)

    kwargs = {
        **training,
        "output_dir": str(paths.checkpoints),
        "bf16": precision == "bf16",
        "fp16": precision == "fp16",
        "reward_weights": reward.reward_weights,
        "chat_template_kwargs": chat_kwargs,
    }
    if accumulation is not None:
        kwargs["gradient_accumulation_steps"] = accumulation
    args = make_training_args(GRPOConfig, kwargs)  # also sets up the distributed state

    calibration = None
    tau = None
    if "similarity" in reward.names:
        # Without --adapter a fresh LoRA changes nothing yet, so the base is the starting policy.
        _to_local_gpu(network, bool(args.use_cpu))
        tau, calibration = _resolve_tau(config, before, network, tokenizer, data, reward, chat_kwargs)
        from alignment_tax.rewards import check_tau

        reward.component("similarity").tau = check_tau(tau)
        if reward_settings.get("precompute_references", True):
            reward.component("similarity").precompute(data.references)

    if args.beta <= 0:
        import logging

        logging.getLogger(__name__).warning(
            "training.beta is %s: GRPO runs without the KL constraint the paper relies on", args.beta
        )

    dataset = Dataset.from_list(
        [{"prompt": e["prompt"], REFERENCE_COLUMN: e[REFERENCE_COLUMN], "id": e["id"]} for e in data.examples]
    )
    trainer = _make_trainer(
        GRPOTrainer, network, args, dataset, tokenizer, peft_config, reward_funcs=reward.reward_funcs
    )
    callbacks = _add_callbacks(trainer, config, tokenizer, paths)
    record = base_record(
        "grpo",
        config,
        model=base_name,
        adapter_init=adapter,
        embedder=embedder,
        train_data=data.record(),
        training_args={"class": "trl.GRPOConfig", **args_dict(args)},
        peft_config=peft_record(trainer.model),
        parameters=trainable_parameters(trainer.model),
        reward={
            "components": [
                {"name": n, "weight": w, "function": repr(f)}
                for n, w, f in zip(reward.names, reward.weights, reward.components)
            ],
            "language": language,
            "stop": list(stop),
        },
        callbacks=callbacks,
        outputs={"adapter": str(paths.adapter), "log": str(paths.log), "checkpoints": str(paths.checkpoints)},
    )
    record["resolved"] = {
        "precision": precision,
        "gradient_accumulation_steps": args.gradient_accumulation_steps,
        "generation_batch_size": args.generation_batch_size,
        "prompts_per_step": args.generation_batch_size // args.num_generations,
        "world_size": processes,
        "tau": tau,
        "calibration": calibration,
        "reference_policy": "frozen copy of --adapter"
        if adapter and args.beta
        else ("base model (adapter disabled)" if args.beta else None),
    }
    return Built(trainer, tokenizer, data, record, paths, checkpoint, reward)


def train_grpo(
    config: dict[str, Any],
    *,
    model: str | None,
    adapter: str | None,
    train_data: str,
    output: str,
    embedder: str | None,
) -> dict[str, Any]:
    """Train, save ``OUTPUT/adapter``, and return a summary (with τ and the last rewards)."""
    built = build_grpo(config, model=model, adapter=adapter, train_data=train_data, output=output, embedder=embedder)
    result = finish(built)
    result["tau"] = built.record["resolved"]["tau"]
    rewards = [e for e in built.trainer.state.log_history if "reward" in e]
    if rewards:
        last = rewards[-1]
        result["last_rewards"] = {k: v for k, v in last.items() if k == "reward" or k.startswith("rewards/")}
    return result
