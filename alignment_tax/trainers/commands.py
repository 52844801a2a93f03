"""The ``train``, ``calibrate-tau`` and ``check-embedder`` subcommands.

``alignment_tax.cli`` adds them with ``register(commands)`` (its subparsers object). Parsers
only declare flags; handlers check values, import the heavy modules and print a JSON summary.
Every user mistake is a :class:`~alignment_tax.errors.UserError` (one line, exit 2).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from alignment_tax.argtypes import at_least, seed
from alignment_tax.errors import UserError
from alignment_tax.paths import check_output_file, write_text_atomically


def _print(payload: dict) -> None:
    print(json.dumps(payload, ensure_ascii=False, indent=2, default=str))


def _write(path: str | None, payload: dict) -> None:
    if path:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomically(target, json.dumps(payload, ensure_ascii=False, indent=2, default=str) + "\n")


def _flat(values: list | None) -> list[str]:
    flat: list[str] = []
    for value in values or []:
        flat.extend(value if isinstance(value, list) else [value])
    return flat


def _train(args: argparse.Namespace) -> None:
    from alignment_tax.trainers.config import METHODS, load_config

    if not args.print_config:
        missing = [
            flag for flag, value in (("--train-data", args.train_data), ("--output", args.output)) if value is None
        ]
        if missing:  # as argparse words it: they are required for everything but --print-config
            args.usage_error(f"the following arguments are required: {', '.join(missing)}")
    if args.method not in METHODS:
        raise UserError(f"unknown --method {args.method!r}; choose one of {', '.join(METHODS)}")
    config = load_config(args.method, args.config, _flat(args.set), task=args.task, max_steps=args.max_steps)
    if args.print_config:
        import yaml

        print(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), end="")
        return
    if args.embedder and args.method != "grpo":
        raise UserError("--embedder is the reward's embedder and applies to --method grpo only")
    from alignment_tax.trainers import train

    _print(
        train(
            config,
            model=args.model,
            adapter=args.adapter,
            train_data=args.train_data,
            output=args.output,
            embedder=args.embedder,
        )
    )


def _calibrate_tau(args: argparse.Namespace) -> None:
    from alignment_tax.trainers.calibrate import calibrate_tau

    if args.output:
        check_output_file(args.output, "--output")  # before minutes of sampling
    result = calibrate_tau(
        model=args.model,
        adapter=args.adapter,
        data=args.data,
        embedder=args.embedder,
        task=args.task,
        quantile=args.quantile,
        prompts=args.prompts,
        samples_per_prompt=args.samples,
        temperature=args.temperature,
        top_p=args.top_p,
        max_new_tokens=args.max_new_tokens,
        batch_size=args.batch_size,
        seed=args.seed,
        device=args.device,
        data_options={"split": args.split, "skip": args.skip},
        max_ci_width=args.max_ci_width,
    )
    _print(result)  # first: a file that cannot be written (a full disk) must not cost the result
    _write(args.output, result)


def _check_embedder(args: argparse.Namespace) -> None:
    from alignment_tax.trainers.check_embedder import check_embedder

    if args.output:
        check_output_file(args.output, "--output")
    result = check_embedder(
        args.embedder,
        args.pairs,
        source_lang=args.source_lang,
        target_lang=args.target_lang,
        limit=args.limit,
        corruption=args.corruption,
        seed=args.seed,
        source_column=args.source_column,
        target_column=args.target_column,
        light_corruption=args.light_corruption,
    )
    _print(result)
    _write(args.output, result)


def _add_train(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "train",
        help="train SFT or GRPO (LoRA, over TRL) or the reward's bilingual embedder, with the paper's presets",
        description="Train with the paper's presets (the defaults; --print-config shows them). "
        "Writes OUTPUT/adapter (or OUTPUT/embedder), OUTPUT/train_config.json (the effective configuration, "
        "the library's defaults included) and OUTPUT/train_log.jsonl. A run whose OUTPUT holds checkpoints "
        "resumes from the last one.",
    )
    parser.add_argument("--method", required=True, metavar="{sft,grpo,embedder}", help="what to train")
    parser.add_argument("--model", help="base model folder or hub id (default: the --adapter's base)")
    parser.add_argument("--adapter", help="LoRA adapter to continue from (GRPO: the cold-start SFT adapter)")
    parser.add_argument(
        "--train-data", metavar="FILE_OR_ID", help="training pairs: file, folder or hub id (required to train)"
    )
    parser.add_argument("--output", metavar="DIR", help="run folder (required to train)")
    parser.add_argument("--config", metavar="YAML", help="a config file (e.g. configs/paper/grpo.yaml)")
    parser.add_argument(
        "--set",
        action="append",
        nargs="+",
        metavar="KEY=VALUE",
        help="override a config value, e.g. training.learning_rate=1e-6 or reward.tau=0.4 (repeatable)",
    )
    parser.add_argument("--max-steps", type=at_least(1), help="stop after N optimizer steps (training.max_steps)")
    parser.add_argument("--embedder", help="GRPO: the reward's sentence-transformers model")
    parser.add_argument(
        "--task",
        help="the evaluation task whose prompts to train on: bo_zh_mt, zh_bo_mt or bo_headline "
        "(default: the config's, bo_zh_mt in the presets)",
    )
    parser.add_argument(
        "--print-config",
        action="store_true",
        help="print the effective configuration (preset, --config, --set) as YAML instead of training",
    )
    parser.set_defaults(handler=_train, usage_error=parser.error)


def _add_calibrate_tau(commands: argparse._SubParsersAction) -> None:
    from alignment_tax.trainers.config_values import calibration_flag
    from alignment_tax.trainers.presets import CALIBRATION_DEFAULTS, DEFAULTS, SECTION_DEFAULTS, TRAIN_TASKS

    default = CALIBRATION_DEFAULTS  # GRPO's preset, the calibration its training runs
    parser = commands.add_parser(
        "calibrate-tau",
        help="suggest the similarity threshold tau from the cold-start policy's samples",
        description="Sample completions from the cold-start policy on the task's prompts, measure their "
        "similarity to the references with the reward's embedder, and report the distribution and "
        f"tau = its --quantile-th quantile (default {default['quantile']}).",
    )
    parser.add_argument("--model", help="the model folder or hub id (default: the --adapter's base)")
    parser.add_argument("--adapter", help="the cold-start SFT adapter")
    parser.add_argument("--data", required=True, metavar="PAIRS", help="training pairs (file, folder or hub id)")
    parser.add_argument("--embedder", required=True, help="the reward's sentence-transformers model")
    task = DEFAULTS["grpo"]["task"]
    others = [name for name in TRAIN_TASKS if name != task]
    parser.add_argument("--task", default=task, help=f"{task} (default), {', '.join(others[:-1])} or {others[-1]}")

    def setting(flag: str, key: str, parse: type, help: str | None = None) -> None:
        """A calibration flag: the config's rule for its value, GRPO's preset for its default."""
        parser.add_argument(flag, type=calibration_flag(key, parse), default=default[key], help=help)

    setting("--quantile", "quantile", float, "tau = this quantile of the similarities")
    setting("--prompts", "prompts", int, "prompts to sample for (the first N)")
    setting("--samples", "samples_per_prompt", int, "completions per prompt")
    setting(
        "--max-ci-width",
        "max_ci_width",
        float,
        "warn when tau's 95%% bootstrap interval (over prompts) is wider (default %(default)s)",
    )
    setting("--temperature", "temperature", float, "> 0 (default %(default)s)")
    setting("--top-p", "top_p", float, "in (0, 1] (default %(default)s)")
    setting("--max-new-tokens", "max_new_tokens", int)
    setting("--batch-size", "batch_size", int, "prompts per generate call")
    parser.add_argument("--split", default=SECTION_DEFAULTS["data"]["split"], help="split of a hub dataset or folder")
    parser.add_argument(
        "--skip", type=at_least(0), default=SECTION_DEFAULTS["data"]["skip"], help="leave out the first N rows"
    )
    setting("--seed", "seed", int)
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--output", help="also write the result to this JSON file")
    parser.set_defaults(handler=_calibrate_tau)


def _add_check_embedder(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "check-embedder",
        help="does the embedder rank true > partly corrupted > unrelated translations? (Spearman, margins)",
        description="The reference study's sanity check of a reward embedder on graded pairs built from "
        "real parallel data.",
    )
    parser.add_argument("--embedder", required=True, help="sentence-transformers model folder or hub id")
    parser.add_argument("--pairs", required=True, metavar="FILE", help="parallel pairs (e.g. {id, bo, zh} JSONL)")
    parser.add_argument("--source-lang", default="bo")
    parser.add_argument("--target-lang", default="zh")
    parser.add_argument("--source-column", help="default: the source language code")
    parser.add_argument("--target-column", help="default: the target language code")
    parser.add_argument("--limit", type=at_least(1), default=200, help="use the first N pairs (default 200)")
    parser.add_argument("--corruption", type=float, default=0.5, help="share of units replaced (default 0.5)")
    parser.add_argument(
        "--light-corruption",
        type=float,
        default=0.1,
        help="within-language checks: the share replaced in the 'true' candidate (default 0.1)",
    )
    parser.add_argument("--seed", type=seed(), default=0)
    parser.add_argument("--output", help="also write the result to this JSON file")
    parser.set_defaults(handler=_check_embedder)


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``train``, ``calibrate-tau`` and ``check-embedder`` to the CLI's subparsers."""
    for add in (_add_train, _add_calibrate_tau, _add_check_embedder):
        add(commands)
