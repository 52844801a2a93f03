"""Experiment specs: models, data, training stages, evaluations, judge pairs and the report.

A spec is YAML (see ``configs/experiments/``)::

    name: exp2-strong-sft-vs-rl
    output: runs/exp2
    models:            # name → {path: PATH_OR_ID} | {tiny: {kind, size, seed, pretrained}}
                       #   | {tiny: {kind: adapter, base: MODEL, zero: true}} (a control)
      base: {path: Qwen/Qwen3-4B-Instruct-2507}
      embedder: {path: runs/embedder/embedder}
    data:              # name → a path or hub id, or "samples:<name>" for the bundled samples
      mt_train: data/bo_zh_train.jsonl
    train:             # name → a training stage, run in order; inputs are names above
      sft_cold_start: {method: sft, model: base, train_data: mt_train, set: {data.limit: 5000}}
      grpo: {method: grpo, model: base, adapter: sft_cold_start, embedder: embedder, train_data: mt_train}
      mine:            # your own method: a command that writes a PEFT adapter to {output}/adapter
        command: python my_method.py --base {model} --data {train_data} --out {output}/adapter
        model: base
        train_data: mt_train
    evaluate:          # every listed run against its base, one `evaluate` each
      runs: [sft_cold_start, grpo]
      tasks: [cmrc2018, bo_zh_mt, drift]
      options: {limit: null, data_dir: null, samples: false, embedder: embedder, data: {}}
      sweep: {grpo: [0, 0.5, 1]}   # optional: an adapter at several strengths (alignment-tax sweep)
    judge:             # blind pairwise comparisons of evaluated runs
      judge_model: gpt-5.2
      options: {base_url: null, api_key_env: OPENAI_API_KEY, limit: null}
      pairs: [{a: grpo, b: sft_cold_start, task: bo_zh_mt}]
    report: {baseline: sft_cold_start, formats: [html, md],
             controls: {negative: zero_adapter, positive: sft_strong},  # runs checked as controls
             reference: semantic-rewards,  # published numbers beside the runs (or a YAML file)
             reference_map: {rl: grpo}}    # published row -> run(s), beside the default matches

Everything is checked when the spec is read, before anything runs; a mistake is one line
naming the key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from alignment_tax.argtypes import check_seed, check_whole
from alignment_tax.errors import UserError
from alignment_tax.evaluation.checks import check_evaluate_values
from alignment_tax.experiments.spec_checks import check_command, stage_order

TOP_KEYS = {"name", "output", "models", "data", "train", "evaluate", "judge", "report"}
TRAIN_KEYS = {"method", "model", "adapter", "embedder", "train_data", "config", "set", "task", "max_steps"}
# A custom stage: your own training command, which must write an adapter to {output}/adapter.
CUSTOM_KEYS = {"command", "model", "adapter", "embedder", "train_data"}
TINY_KEYS = {"kind", "size", "seed", "pretrained", "shape", "layers", "dtype"}
TINY_ADAPTER_KEYS = {"kind", "base", "seed", "zero", "rank"}
EVALUATE_KEYS = {"runs", "tasks", "options", "include_base", "sweep"}
EVALUATE_OPTION_KEYS = {
    "limit",
    "batch_size",
    "device",
    "dtype",
    "embedder",
    "data_dir",
    "data",
    "samples",
    "seed",
    "enable_thinking",
    "drift_corpus",
    "drift_window",
    "drift_stride",
    "drift_packing",
    "engine",
    "vllm",
    "server",
    "max_gen_toks",
    "lang_tolerance",
}
JUDGE_KEYS = {"judge_model", "options", "pairs"}
REPORT_KEYS = {"baseline", "formats", "controls", "reference", "reference_map"}
SAMPLES_PREFIX = "samples:"


@dataclass
class Spec:
    name: str
    output: Path
    models: dict[str, dict[str, Any]]
    data: dict[str, str]
    train: dict[str, dict[str, Any]]
    evaluate: dict[str, Any] = field(default_factory=dict)
    judge: dict[str, Any] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)
    source: Path | None = None


def _mapping(value: Any, where: str, allowed: set[str] | None = None) -> dict[str, Any]:
    """``value`` (null: empty) as a mapping, with only ``allowed`` keys when given."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise UserError(f"{where} should be a mapping, got {type(value).__name__}")
    unknown = sorted(map(str, set(value) - allowed)) if allowed is not None else []
    if unknown:
        raise UserError(f"{where}: unknown key(s) {', '.join(unknown)}; valid: {', '.join(sorted(allowed))}")
    return value


def _check_model(name: str, model: dict[str, Any], models: dict[str, Any]) -> None:
    if set(model) not in ({"path"}, {"tiny"}):
        raise UserError(f"models.{name} should be {{path: PATH_OR_ID}} or {{tiny: {{kind, size, seed}}}}")
    if "tiny" not in model:
        _check_type(model["path"], f"models.{name}.path", str)
        return
    where = f"models.{name}.tiny"
    tiny = _mapping(model["tiny"], where)
    adapter = tiny.get("kind") == "adapter"
    _mapping(tiny, where, TINY_ADAPTER_KEYS if adapter else TINY_KEYS)
    if tiny.get("seed") is not None:
        check_seed(tiny["seed"], f"{where}.seed")
    for key in ("zero", "pretrained"):
        _check_type(tiny.get(key), f"{where}.{key}", bool)
    if adapter:
        if tiny.get("rank") is not None:
            check_whole(tiny["rank"], f"{where}.rank", 1)
        earlier = dict(list(models.items())[: list(models).index(name)])
        _require_name(tiny.get("base"), earlier, f"{where}.base", "earlier model")
        if tiny.get("base") is None:
            raise UserError(f"{where}.base: name the model the adapter is for")
        return
    if tiny.get("shape") is not None and "size" in tiny:
        raise UserError(f"{where}: choose size or shape, not both")
    from alignment_tax.models.tiny import check_shape_request

    try:
        check_shape_request(
            tiny.get("kind", "lm"),
            tiny.get("shape"),
            tiny.get("layers"),
            tiny.get("dtype", "float32"),
            bool(tiny.get("pretrained")),
        )
    except UserError as error:
        raise UserError(f"{where}: {error}") from None
    if tiny.get("pretrained"):
        from alignment_tax.models.tiny import check_pretrainable

        try:  # the runner's defaults: an lm of size tiny
            check_pretrainable(tiny.get("kind", "lm"), tiny.get("size", "tiny"))
        except UserError as error:
            raise UserError(f"{where}.pretrained: {error}") from None


def _require_name(value: Any, known: dict, where: str, what: str) -> None:
    if value is not None and value not in known:
        raise UserError(f"{where}: {value!r} is not a defined {what} ({', '.join(known) or 'none defined'})")


def _check_train(spec: Spec) -> None:
    from alignment_tax.trainers.config import METHODS

    for name, stage in spec.train.items():
        where = f"train.{name}"
        custom = "command" in stage
        _mapping(stage, where, CUSTOM_KEYS if custom else TRAIN_KEYS)
        if custom and not isinstance(stage["command"], str):
            raise UserError(f"{where}.command should be a shell command string")
        if custom:
            check_command(stage["command"], f"{where}.command")
        if not custom and stage.get("method") not in METHODS:
            raise UserError(f"{where}.method should be one of {', '.join(METHODS)}, got {stage.get('method')!r}")
        _require_name(stage.get("model"), spec.models, f"{where}.model", "model")
        _require_name(stage.get("embedder"), spec.models | spec.train, f"{where}.embedder", "model or stage")
        earlier = dict(list(spec.train.items())[: list(spec.train).index(name)])
        _require_name(stage.get("adapter"), earlier, f"{where}.adapter", "earlier training stage")
        if stage.get("train_data") not in spec.data:
            raise UserError(f"{where}.train_data: {stage.get('train_data')!r} is not defined under data")
        if not custom:
            _check_training_stage(spec, stage, where)


def _check_training_stage(spec: Spec, stage: dict[str, Any], where: str) -> None:
    """The stage's own values, then its whole training configuration, as the runner will load it."""
    from alignment_tax.trainers.config import load_config

    if stage.get("max_steps") is not None:
        check_whole(stage["max_steps"], f"{where}.max_steps", 1)
    for key in ("config", "task"):
        _check_type(stage.get(key), f"{where}.{key}", str)
    overrides = [f"{key}={json.dumps(value)}" for key, value in _mapping(stage.get("set"), f"{where}.set").items()]
    try:
        load_config(
            stage["method"],
            stage_config_path(spec, stage),
            overrides,
            task=stage.get("task"),
            max_steps=stage.get("max_steps"),
        )
    except UserError as error:
        raise UserError(f"{where}: {error}") from None


def stage_config_path(spec: Spec, stage: dict[str, Any]) -> str | None:
    """A stage's ``config`` file, relative to the spec's folder."""
    config_file = stage.get("config")
    if config_file and spec.source and not Path(config_file).is_absolute():
        return str((spec.source.parent / config_file).resolve())
    return config_file


def _check_names(value: Any, where: str) -> None:
    if value is not None and not (isinstance(value, list) and all(isinstance(item, str) for item in value)):
        raise UserError(f"{where} should be a list of names, got {value!r}")


def _check_type(value: Any, where: str, kind: type[str] | type[bool]) -> None:
    if value is not None and not isinstance(value, kind):
        raise UserError(f"{where} should be {'true or false' if kind is bool else 'a string'}, got {value!r}")


def _check_evaluate(spec: Spec) -> None:
    evaluate = spec.evaluate
    if evaluate and not evaluate.get("tasks"):
        raise UserError("evaluate.tasks: name at least one task")
    for key in ("runs", "tasks"):
        _check_names(evaluate.get(key), f"evaluate.{key}")
    _check_type(evaluate.get("include_base"), "evaluate.include_base", bool)
    if evaluate.get("tasks"):  # a typo fails now, not after the training stages
        from alignment_tax.evaluation.checks import DRIFT_TASK
        from alignment_tax.tasks.names import check_task_names

        try:
            check_task_names(evaluate["tasks"], also=(DRIFT_TASK,))
        except UserError as error:
            raise UserError(f"evaluate.tasks: {error}") from None
    for run in evaluate.get("runs", []):
        _require_name(run, spec.train | spec.models, "evaluate.runs", "training stage or model")
    from alignment_tax.evaluation.sweep import check_distinct_labels, parse_scales

    adapters = {name: m for name, m in spec.models.items() if (m.get("tiny") or {}).get("kind") == "adapter"}
    for run, scales in _mapping(evaluate.get("sweep"), "evaluate.sweep").items():
        _require_name(run, spec.train | adapters, "evaluate.sweep", "training stage or tiny adapter")
        if not isinstance(scales, list):
            raise UserError(f"evaluate.sweep.{run}: a list of strengths, e.g. [0, 0.5, 1]")
        where = f"evaluate.sweep.{run}"
        parse_scales(",".join(str(s) for s in scales), where)
        # The runner evaluates the list as written, so a repeat would be evaluated twice.
        check_distinct_labels([float(s) for s in scales], where)
    options = _mapping(evaluate.get("options"), "evaluate.options", EVALUATE_OPTION_KEYS)
    check_evaluate_values(options, lambda key: f"evaluate.options.{key}")
    _require_name(options.get("embedder"), spec.models | spec.train, "evaluate.options.embedder", "model or stage")
    from dataclasses import fields

    from alignment_tax.evaluation.engines import ENGINES, VLLMOptions
    from alignment_tax.evaluation.generation_caps import check_caps
    from alignment_tax.evaluation.served import ServerOptions

    if options.get("engine", "hf") not in ENGINES:
        raise UserError(f"evaluate.options.engine: {options['engine']!r} is not one of {', '.join(ENGINES)}")
    if "max_gen_toks" in options:
        try:
            check_caps(options["max_gen_toks"] or {})
        except UserError as error:
            raise UserError(f"evaluate.options.max_gen_toks: {error}") from None
        _check_cap_tasks(options["max_gen_toks"] or {}, list(evaluate.get("tasks") or []))
    for key, options_class in (("vllm", VLLMOptions), ("server", ServerOptions)):
        where = f"evaluate.options.{key}"
        settings = _mapping(options.get(key), where, {f.name for f in fields(options_class)})
        options_class(**settings)  # its own checks of the values, at load time


def _check_cap_tasks(caps: dict[str, Any], tasks: list[str]) -> None:
    """A cap for a task that is not run, or does not generate (drift), fails here, not after training."""
    from alignment_tax.evaluation.checks import DRIFT_TASK

    for task in caps:
        if task not in tasks or task == DRIFT_TASK:
            what = "is not among evaluate.tasks" if task not in tasks else "does not generate text"
            raise UserError(f"evaluate.options.max_gen_toks: {task} {what} ({', '.join(tasks)})")


def _check_judge(spec: Spec) -> None:
    from dataclasses import fields

    from alignment_tax.judge.pipeline import JudgeOptions

    _check_type(spec.judge.get("judge_model"), "judge.judge_model", str)
    settable = {f.name for f in fields(JudgeOptions)} - {"run_a", "run_b", "task", "output", "judge_model"}
    options = _mapping(spec.judge.get("options"), "judge.options", settable)
    for key, least in (("limit", 1), ("concurrency", 1), ("max_calls", 0)):
        if options.get(key) is not None:
            check_whole(options[key], f"judge.options.{key}", least)
    if options.get("seed") is not None:
        check_seed(options["seed"], "judge.options.seed")
    evaluated = set(spec.evaluate.get("runs", [])) | ({"base"} if spec.evaluate.get("include_base", True) else set())
    for index, pair in enumerate(spec.judge.get("pairs", [])):
        where = f"judge.pairs[{index}]"
        _mapping(pair, where, {"a", "b", "task"})
        if not isinstance(pair.get("task"), str):
            raise UserError(f"{where}.task: name the task whose outputs are judged, got {pair.get('task')!r}")
        for side in ("a", "b"):
            if pair.get(side) not in evaluated:
                raise UserError(
                    f"{where}.{side}: {pair.get(side)!r} is not an evaluated run ({', '.join(sorted(evaluated))})"
                )


def load_spec(path: str | Path, output: str | None = None) -> Spec:
    """Read and check a spec; ``output`` overrides the spec's own output folder."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"experiment spec not found: {path}")
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        raise UserError(
            f"{path}: not UTF-8 text (byte {error.start}: {error.reason}); save the spec as UTF-8"
        ) from None
    except yaml.YAMLError as error:
        raise UserError(f"{path}: invalid YAML: {str(error).splitlines()[0]}") from None
    document = _mapping(document, str(path), TOP_KEYS)
    spec = Spec(
        name=str(document.get("name") or path.stem),
        output=Path(output or document.get("output") or f"runs/{path.stem}"),
        models=_mapping(document.get("models"), "models"),
        data={key: str(value) for key, value in _mapping(document.get("data"), "data").items()},
        train=_mapping(document.get("train"), "train"),
        evaluate=_mapping(document.get("evaluate"), "evaluate", EVALUATE_KEYS),
        judge=_mapping(document.get("judge"), "judge", JUDGE_KEYS),
        report=_mapping(document.get("report"), "report", REPORT_KEYS),
        source=path,
    )
    if not spec.train and not spec.evaluate.get("runs"):
        raise UserError(f"{path}: nothing to run: define training stages under `train` or runs under `evaluate.runs`")
    for name, model in spec.models.items():
        _check_model(name, _mapping(model, f"models.{name}"), spec.models)
    spec.train = {name: _mapping(stage, f"train.{name}") for name, stage in spec.train.items()}
    spec.train = {name: spec.train[name] for name in stage_order(spec.train)}  # no cycles; inputs first
    _check_train(spec)
    _check_evaluate(spec)
    _check_judge(spec)
    _check_names(spec.report.get("formats"), "report.formats")
    _check_controls(spec)
    _check_reference(spec)
    return spec


def _check_reference(spec: Spec) -> None:
    from alignment_tax.reports.references import builtin, load_reference, matcher, parse_map

    reference, mapping = spec.report.get("reference"), spec.report.get("reference_map")
    if reference is None:
        if mapping is not None:
            raise UserError("report.reference_map needs report.reference")
        return
    if not isinstance(reference, str) or not reference:
        raise UserError(f"report.reference must be a shipped reference name or a YAML file, got {reference!r}")
    beside_spec = spec.source.parent / reference if spec.source else None
    if (
        reference not in builtin()
        and beside_spec
        and not Path(reference).expanduser().is_absolute()
        and beside_spec.is_file()
    ):
        spec.report["reference"] = reference = str(beside_spec.resolve())  # relative to the spec, like config files
    if mapping is not None and not isinstance(mapping, dict):
        raise UserError("report.reference_map must map a published row to a run name or a list of them")
    evaluated = [str(name) for name in spec.evaluate.get("runs", [])]
    matcher(load_reference(reference, "report.reference"), parse_map(mapping), evaluated, "report.reference_map")


def _check_controls(spec: Spec) -> None:
    from alignment_tax.reports.controls import ROLES

    controls = _mapping(spec.report.get("controls"), "report.controls", set(ROLES))
    evaluated = {name: None for name in spec.evaluate.get("runs", [])}
    for role, run in controls.items():
        _require_name(run, evaluated, f"report.controls.{role}", "evaluated run")
