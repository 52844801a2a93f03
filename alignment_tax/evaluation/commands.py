"""The ``evaluate``, ``sweep`` and ``score`` subcommands: flags to their functions in this package.

``alignment_tax.cli`` adds ``evaluate`` and ``sweep`` with ``register(commands)`` and ``score``
with ``register_score(commands)`` (its subparsers object; two calls, so ``--help`` lists the
commands in their usual order). Handlers print a short summary on stdout, or with ``--json`` what the function returns as JSON.
Every user mistake is a :class:`~alignment_tax.errors.UserError` (one line, exit 2).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from alignment_tax.argtypes import at_least, seed
from alignment_tax.errors import UserError
from alignment_tax.evaluation.checks import MIN_DRIFT_WINDOW
from alignment_tax.terminal import emit, report_hint, scores_line, series_lines


def _print_json(payload: dict, compact: bool = False) -> None:
    if compact:
        print(json.dumps(payload, ensure_ascii=False))
    else:
        print(json.dumps(payload, ensure_ascii=False, indent=2))


def _score_cmrc(args: argparse.Namespace) -> None:
    from alignment_tax.evaluation.score_files import score_cmrc_files

    # One line, as the official scorer prints it, so scripts written for it keep working.
    _print_json(score_cmrc_files(args.data, args.predictions), compact=True)


def _score_generation(args: argparse.Namespace) -> None:
    from alignment_tax.evaluation.score_files import score_generation_file

    result = score_generation_file(
        task=args.score_task,
        predictions_path=args.predictions,
        target_lang=args.target_lang,
        embedder=args.embedder,
        items_path=args.items,
        lang_tolerance=args.lang_tolerance,
    )
    _print_json(result)


def _parse_data_overrides(pairs: list[str]) -> dict[str, str | dict]:
    """``TASK=PATH_OR_ID``, or ``TASK={"path": ..., "split": ..., "<x>_column": ...}`` as JSON."""
    overrides: dict[str, str | dict] = {}
    for pair in pairs:
        task, sep, source = pair.partition("=")
        source = source.strip()
        if not sep or not task or not source:
            raise UserError(f"--data expects TASK=PATH_OR_ID or TASK=JSON, got {pair!r}")
        if source.startswith("{"):
            try:
                overrides[task.strip()] = json.loads(source)
            except json.JSONDecodeError as error:
                raise UserError(f"--data {task}: invalid JSON ({error})") from None
        else:
            overrides[task.strip()] = source
    return overrides


def _data_overrides(args: argparse.Namespace) -> dict[str, str | dict]:
    overrides: dict[str, str | dict] = {}
    if args.samples:
        from alignment_tax.data.samples import evaluation_data

        overrides.update(evaluation_data())
    overrides.update(_parse_data_overrides(args.data))
    return overrides


def _parse_batch_size(value: str) -> int | str:
    if value == "auto" or value.startswith("auto:"):
        return value
    try:
        size = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'auto', got {value!r}") from None
    if size < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'auto', got {value!r}")
    return size


def _evaluate_options(args: argparse.Namespace):
    from alignment_tax.evaluation.checks import DRIFT_TASK
    from alignment_tax.tasks.names import check_task_names

    tasks = [task.strip() for task in args.tasks.split(",") if task.strip()]
    if not tasks:
        raise UserError("--tasks is empty; name at least one task")
    check_task_names(tasks, also=(DRIFT_TASK,))  # before a second of imports; evaluate() checks the rest

    from alignment_tax.evaluation.engines import VLLMOptions, parse_engine_args
    from alignment_tax.evaluation.evaluate import EvaluateOptions
    from alignment_tax.evaluation.generation_caps import parse_max_gen_toks
    from alignment_tax.evaluation.served import ServerOptions
    from alignment_tax.models.placement import parse_device_map, parse_max_memory

    return EvaluateOptions(
        tasks=tasks,
        output=args.output,
        model=args.model,
        adapter=args.adapter,
        base=args.base,
        limit=args.limit,
        batch_size=args.batch_size,
        device=args.device,
        dtype=args.dtype,
        device_map=parse_device_map(args.device_map) if args.device_map else None,
        max_memory=parse_max_memory(args.max_memory) if args.max_memory else None,
        offload_folder=args.offload_folder,
        embedder=args.embedder,
        data_dir=args.data_dir,
        data=_data_overrides(args),
        seed=args.seed,
        enable_thinking=args.enable_thinking,
        drift_corpus=args.drift_corpus,
        drift_window=args.drift_window,
        drift_stride=args.drift_stride,
        drift_packing=args.drift_packing,
        max_gen_toks=parse_max_gen_toks(args.max_gen_toks),
        lang_tolerance=args.lang_tolerance,
        engine=args.engine,
        merge_adapter=args.merge_adapter,
        vllm=VLLMOptions(
            tensor_parallel_size=args.tensor_parallel_size,
            data_parallel_size=args.data_parallel_size,
            gpu_memory_utilization=args.gpu_memory_utilization,
            max_model_len=args.max_model_len,
            extra=parse_engine_args(args.vllm_arg),
        ),
        server=ServerOptions(
            base_url=args.base_url,
            model=args.served_model,
            base_model=args.served_base,
            api_key_env=args.api_key_env,
            concurrency=args.concurrency,
            prompt_format=args.prompt_format,
        ),
    )


def _evaluate(args: argparse.Namespace) -> None:
    from alignment_tax.evaluation.data_parallel import is_main, processes
    from alignment_tax.evaluation.evaluate import evaluate

    if args.checkpoints:
        from alignment_tax.evaluation.checkpoint_series import evaluate_checkpoints

        # It finds the checkpoints (skipping damaged ones, once) before any model loads.
        with processes(args.device):
            series = evaluate_checkpoints(_evaluate_options(args), args.checkpoints)
            if is_main():  # under torchrun every process returns; one prints
                head = f"evaluated the checkpoints of {args.checkpoints} under {args.output}:"
                emit(series, args.json, [head, *series_lines(series["steps"]), report_hint(f"{args.output}/*")])
        return
    with processes(args.device):
        results = evaluate(_evaluate_options(args))
        if not is_main():
            return
    summary = {"results": str(Path(args.output) / "results.json"), "tasks": results["tasks"]}
    for key in ("health", "tax", "drift"):
        if results.get(key):
            summary[key] = results[key]
    what = f"adapter {results['adapter']} on {results['model']}" if results.get("adapter") else results.get("model")
    lines = [
        f"evaluated {what}: {scores_line(results['tasks'], results.get('tax'), results.get('drift'))}",
        f"results: {summary['results']} (per-item records in {Path(args.output) / 'samples'})",
        report_hint(args.output),
    ]
    emit(summary, args.json, lines)


def _sweep(args: argparse.Namespace) -> None:
    from alignment_tax.evaluation.data_parallel import is_main, processes
    from alignment_tax.evaluation.sweep import parse_scales, sweep

    scales = parse_scales(args.scales)  # before any model loads
    with processes(args.device):
        summary = sweep(_evaluate_options(args), scales)
        if is_main():
            head = f"swept {summary['adapter']} at strengths {args.scales} under {summary['output']}:"
            emit(summary, args.json, [head, *series_lines(summary["runs"]), report_hint(f"{summary['output']}/*")])


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``evaluate`` and ``sweep`` to ``commands`` (the result of ``add_subparsers``)."""
    parser = commands.add_parser(
        "evaluate",
        help="score a checkpoint (full or LoRA) on target tasks and the tax",
        description="Run the package's lm-eval tasks (cmrc2018, bo_zh_mt, zh_bo_mt, bo_headline), any "
        "built-in lm-eval task, and `drift` (per-token NLL and KL to the base); write results.json and "
        "samples/<task>.jsonl under --output.",
    )
    _evaluate_arguments(parser)
    parser.add_argument(
        "--checkpoints",
        metavar="RUN_DIR",
        help="evaluate every saved checkpoint of a training run (and its final adapter), each under "
        "OUTPUT/step_<N>/, sharing the base: the tax over training",
    )
    parser.set_defaults(handler=_evaluate)
    sweep = commands.add_parser(
        "sweep",
        help="evaluate one adapter at several strengths (its LoRA update scaled by s) for the tax-gain frontier",
        description="Each strength s is a scaled copy of --adapter (s = 0: the base exactly; s = 1: the adapter) "
        "evaluated as `evaluate` would, under OUTPUT/scale_<s>/, sharing the base's results. Takes every "
        "flag of `evaluate`.",
    )
    sweep.add_argument("--scales", required=True, metavar="S1,S2,...", help="strengths, e.g. 0,0.25,0.5,0.75,1")
    _evaluate_arguments(sweep)
    sweep.set_defaults(handler=_sweep)


def _evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the summary as JSON (for scripts)")
    parser.add_argument("--model", help="model folder or hub id (default: the adapter's base model)")
    parser.add_argument("--adapter", help="PEFT (LoRA) adapter folder to put on --model")
    parser.add_argument(
        "--base",
        nargs="?",
        const="auto",
        default=None,
        help="also evaluate the base model and report the tax (candidate − base); with an adapter and no "
        "value, the adapter is disabled instead of loading a second copy",
    )
    parser.add_argument("--tasks", required=True, help="comma-separated task names")
    parser.add_argument("--limit", type=at_least(1), help="evaluate only the first N items of each task")
    parser.add_argument("--batch-size", type=_parse_batch_size, default=8, help="N or auto (default 8)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--dtype", choices=["auto", "float32", "bfloat16", "float16"], default="auto")
    parser.add_argument(
        "--device-map",
        metavar="auto|JSON",
        help="spread a model larger than one card over the GPUs, then the CPU, then disk (accelerate, as "
        "lm-eval's parallelize=True): auto, balanced, balanced_low_0, sequential, or a JSON object "
        '{"module": GPU_INDEX|"cpu"|"disk"}; for the hf engine and drift (default: all on --device)',
    )
    parser.add_argument(
        "--max-memory",
        metavar="DEVICE=SIZE[,...]",
        help="with --device-map: the most each device may hold, e.g. 0=70GiB,1=70GiB,cpu=100GiB (what does "
        "not fit goes to disk)",
    )
    parser.add_argument(
        "--offload-folder",
        metavar="DIR",
        help="with --device-map: where weights offloaded to disk may be written (default: a temporary folder "
        "inside --output, removed at the end)",
    )
    parser.add_argument("--embedder", help="sentence-transformers model for the similarity metric")
    parser.add_argument("--data-dir", help="offline data folder laid out like shared/data")
    parser.add_argument(
        "--data",
        action="append",
        default=[],
        metavar="TASK=PATH_OR_ID",
        help='this task\'s data from a file or hub id (repeatable); or TASK={"path": ID, "split": ..., '
        '"config": ..., "article_column": ...} to also set the split, config or columns',
    )
    parser.add_argument(
        "--samples",
        action="store_true",
        help="use the sample data bundled with the package for every task (a smoke test, offline)",
    )
    parser.add_argument(
        "--drift-corpus",
        metavar="FILE_OR_ID",
        help="texts for the drift task (default: CMRC 2018 dev passages, deduplicated)",
    )
    parser.add_argument(
        "--drift-window", type=at_least(MIN_DRIFT_WINDOW), help="tokens per drift window (default: the model's context)"
    )
    parser.add_argument(
        "--drift-stride", type=at_least(1), help="new tokens per window past the first (default: half the window)"
    )
    parser.add_argument(
        "--drift-packing",
        choices=["auto", "on", "off"],
        default="auto",
        help="pack drift windows into rows without padding (auto: on CUDA only; values equal the padded "
        "layout's to float32 rounding; off keeps them bit-identical to earlier runs)",
    )
    parser.add_argument(
        "--max-gen-toks",
        action="append",
        default=[],
        metavar="TASK=N",
        help="generate at most N tokens for TASK (repeatable; default: 256 for this package's tasks, the "
        "completion cap GRPO trains with, raised to hold the longest reference; built-in tasks keep theirs)",
    )
    parser.add_argument(
        "--lang-tolerance",
        metavar="acronyms=N,other_share=X",
        help="relax lang_consistency: Latin capitals in runs of at most N letters ('GDP') are free, and/or up to "
        "a share X of letters may be in other scripts (default: the paper's strict rule; the reward takes the "
        "same value as reward.language_tolerance)",
    )
    parser.add_argument("--seed", type=seed(), default=1234)
    parser.add_argument("--enable-thinking", action="store_true", help="let thinking models think (off by default)")
    parser.add_argument("--output", required=True, help="output folder")
    engine = parser.add_argument_group("generation engine")
    engine.add_argument(
        "--engine",
        choices=["hf", "vllm", "server"],
        default="hf",
        help="hf: transformers in this process (default); vllm: vLLM on the GPU(s), LoRA served as a "
        'LoRA request (pip install "alignment-tax[vllm]"); server: an OpenAI-compatible /v1/completions '
        "endpoint (vllm serve, SGLang, TGI, transformers serve) at --base-url. Drift always runs with transformers.",
    )
    engine.add_argument(
        "--no-merge-adapter",
        dest="merge_adapter",
        action="store_false",
        help="hf: generate through the unmerged LoRA layers (default: the adapter folded into the weights for the "
        "candidate's generations, a bare model's speed; the base's weights are restored bit for bit afterwards)",
    )
    engine.add_argument("--tensor-parallel-size", type=at_least(1), default=1, help="vllm: GPUs per model copy")
    engine.add_argument(
        "--data-parallel-size",
        type=at_least(1),
        default=1,
        help="vllm: model copies, each on its own GPUs (through Ray, as lm-eval does)",
    )
    engine.add_argument(
        "--gpu-memory-utilization",
        type=float,
        default=0.85,
        help="vllm: share of each GPU's memory it may take (default 0.85, leaving room for the embedder)",
    )
    engine.add_argument("--max-model-len", type=at_least(1), help="vllm: context length (default: the model's)")
    engine.add_argument(
        "--vllm-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other vllm.LLM argument; VALUE is read as JSON when it parses (repeatable)",
    )
    engine.add_argument("--base-url", help="server: the API root, e.g. http://127.0.0.1:8000/v1")
    engine.add_argument(
        "--served-model",
        metavar="NAME",
        help="server: the candidate's served name (an adapter's --lora-modules name; default: --model)",
    )
    engine.add_argument(
        "--served-base", metavar="NAME", help="server: the base's served name (default: the base's name)"
    )
    engine.add_argument(
        "--api-key-env",
        default="OPENAI_API_KEY",
        metavar="VAR",
        help="server: environment variable holding the key (none needed for a server started without one)",
    )
    engine.add_argument("--concurrency", type=at_least(1), default=8, help="server: requests in flight (default 8)")
    engine.add_argument(
        "--prompt-format",
        choices=["auto", "tokens", "text"],
        default="auto",
        help="server: send prompts as token ids (vllm serve, SGLang) or as the chat-templated text (transformers "
        "serve); auto (default): token ids until the server refuses them for text, then text",
    )


def register_score(commands: argparse._SubParsersAction) -> None:
    """Add ``score`` (and its ``cmrc``, ``mt`` and ``headline`` subcommands) to ``commands``."""
    parser = commands.add_parser("score", help="score existing outputs without running a model")
    tasks = parser.add_subparsers(dest="score_task", metavar="{cmrc,mt,headline}", required=True)

    cmrc = tasks.add_parser(
        "cmrc",
        help="CMRC 2018 EM/F1/AVERAGE, exactly as the official scorer",
        description="Same inputs and output as the official cmrc2018_evaluate.py.",
    )
    cmrc.add_argument("--data", required=True, help="SQuAD-layout dataset JSON (e.g. cmrc2018_dev.json)")
    cmrc.add_argument("--predictions", required=True, help="JSON object {question_id: answer}")
    cmrc.set_defaults(handler=_score_cmrc)

    for name, default_lang, what in (
        ("mt", "zh", "translations: BLEU, chrF, language consistency, similarity"),
        ("headline", "bo", "headlines: ROUGE-1/2/L, language consistency, similarity"),
    ):
        task = tasks.add_parser(name, help=f"score {what}")
        task.add_argument("--predictions", required=True, help="JSONL with `prediction` and `reference` per line")
        task.add_argument(
            "--target-lang", default=default_lang, help=f"language of the outputs (default {default_lang})"
        )
        task.add_argument("--embedder", help="sentence-transformers model (path or hub id) for similarity")
        task.add_argument("--items", help="also write per-item metric values to this JSONL file")
        task.add_argument(
            "--lang-tolerance",
            metavar="acronyms=N,other_share=X",
            help="relax language consistency (default: the paper's strict script rule)",
        )
        task.set_defaults(handler=_score_generation)
