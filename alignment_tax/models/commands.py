"""The ``make-tiny-model`` subcommand: local Qwen3-style models, embedders and adapters (no downloads)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from alignment_tax.argtypes import at_least, seed
from alignment_tax.errors import UserError
from alignment_tax.models.qwen3_shapes import DTYPES, QWEN3_SHAPES
from alignment_tax.paths import check_output_folder


def _make_tiny_model(args: argparse.Namespace) -> None:
    check_output_folder(args.out, "output folder")
    if args.kind == "adapter":
        from alignment_tax.models.loading import check_model_folder
        from alignment_tax.models.tiny_adapter import build_tiny_adapter

        if not args.base_model:
            raise UserError("--kind adapter needs --base-model (a model folder, e.g. one made by make-tiny-model)")
        if not Path(args.base_model).is_dir():
            raise UserError(f"base model not found: {args.base_model}")
        check_model_folder(Path(args.base_model), "--base-model")
        if args.shape or args.layers is not None or args.dtype:
            raise UserError("--shape, --layers and --dtype are for --kind lm (the adapter follows its --base-model)")
        # Resolved: the adapter records its base's path, which must not depend on where this ran.
        base = Path(args.base_model).resolve()
        print(build_tiny_adapter(base, args.out, rank=args.rank or 8, seed=args.seed, zero=args.zero))
        return
    if args.zero:
        raise UserError("--zero is for --kind adapter")
    if args.rank is not None:
        raise UserError("--rank is for --kind adapter")
    if args.shape and args.size:
        raise UserError("choose --size or --shape, not both")
    from alignment_tax.models.pretrain import PretrainConfig
    from alignment_tax.models.tiny import build_tiny_model

    pretrain = PretrainConfig(steps=args.pretrain_steps, seed=args.seed) if args.pretrain else None
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731  (stdout: the folder only)
    print(
        build_tiny_model(
            args.out,
            kind=args.kind,
            size=args.size or "tiny",
            seed=args.seed,
            pretrained=args.pretrained,
            pretrain=pretrain,
            log=log,
            shape=args.shape,
            layers=args.layers,
            dtype=args.dtype or "float32",
        )
    )


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "make-tiny-model",
        help="build a tiny Qwen3-style LM or embedder locally (no downloads) for smoke tests",
        description="Build a deterministic tiny model with a byte-level BPE tokenizer trained on "
        "the Chinese and Tibetan text shipped with the package.",
    )
    parser.add_argument("out", help="output folder")
    parser.add_argument(
        "--kind",
        choices=["lm", "embedder", "adapter"],
        default="lm",
        help="adapter: a random LoRA adapter (all linear projections) on --base-model",
    )
    parser.add_argument("--base-model", help="with --kind adapter: the model folder the adapter is for")
    parser.add_argument(
        "--zero",
        action="store_true",
        help="with --kind adapter: LoRA's B matrices zero, so the adapter changes nothing (a control)",
    )
    parser.add_argument(
        "--size", choices=["tiny", "mini", "small"], help="tiny ≈0.3M, mini ≈1.3M, small ≈27M parameters"
    )
    pretraining = parser.add_mutually_exclusive_group()
    pretraining.add_argument(
        "--pretrained",
        action="store_true",
        help="with --size mini: the package's pretrained weights (Chinese and Tibetan text)",
    )
    pretraining.add_argument(
        "--pretrain",
        action="store_true",
        help="with --size mini: pretrain anew from --seed, as the shipped weights were (minutes)",
    )
    parser.add_argument("--pretrain-steps", type=at_least(1), default=1000, help="optimiser steps of --pretrain")
    parser.add_argument(
        "--shape",
        choices=list(QWEN3_SHAPES),
        help="instead of --size: a random lm with the widths and 151,936-token vocabulary of that Qwen3 model",
    )
    parser.add_argument(
        "--layers", type=at_least(1), help="with --shape: fewer decoder layers than published (28 / 36)"
    )
    parser.add_argument("--dtype", choices=list(DTYPES), help="with --shape: the weights' dtype (default float32)")
    parser.add_argument(
        "--rank",
        type=at_least(1),
        help="with --kind adapter: LoRA rank, at most the base's hidden size (default 8; the study's is 64)",
    )
    parser.add_argument("--seed", type=seed(), default=0)
    parser.set_defaults(handler=_make_tiny_model)
