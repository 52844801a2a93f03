"""Running a spec: every stage cached by the content of its inputs.

A stage's key hashes its own settings and the keys of everything it reads (model weights, data
files, earlier stages), so a rerun skips what is done, a changed input reruns exactly the
stages downstream of it, and an interrupted stage starts again in place (training resumes from
its last checkpoint, evaluation from its generation cache, the judge from its verdict cache).
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from alignment_tax import provenance
from alignment_tax.data.hashing import file_sha256
from alignment_tax.experiments.spec import SAMPLES_PREFIX, Spec, stage_config_path
from alignment_tax.paths import check_output_folder, write_text_atomically

# Stage folders by kind; a log line names the kind, since a run's training and evaluation share a name.
STAGE_KINDS = {"models": "model", "train": "train", "eval": "evaluate", "judge": "judge"}
DONE_FILE = "stage.json"
PENDING_FILE = "stage.pending.json"


def _log(message: str) -> None:
    print(f"[run] {message}", file=sys.stderr, flush=True)


def run_stage(folder: Path, payload: dict[str, Any], work: Callable[[Path], dict[str, Any]]) -> tuple[str, dict]:
    """Run ``work(folder)`` unless a finished stage with the same key is there; return (key, summary)."""
    key = provenance.content_key({**payload, "alignment_tax": provenance.versions()["alignment-tax"]})
    done, pending = folder / DONE_FILE, folder / PENDING_FILE
    label = f"{STAGE_KINDS.get(folder.parent.name, folder.parent.name)} {folder.name}"
    if done.exists():
        record = json.loads(done.read_text(encoding="utf-8"))
        if record.get("key") == key:
            _log(f"{label}: done, skipped (key {key})")
            return key, record["summary"]
    stale = (done.exists() or pending.exists()) and _stored_key(done, pending) != key
    if stale:  # its inputs changed: what is there belongs to another stage
        _log(f"{label}: inputs changed, starting over")
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomically(pending, json.dumps({"key": key}))
    _log(f"{label}: running (key {key})")
    summary = work(folder)
    write_text_atomically(done, json.dumps({"key": key, "summary": summary, "finished": provenance.now()}, default=str))
    pending.unlink(missing_ok=True)
    return key, summary


def _stored_key(done: Path, pending: Path) -> str | None:
    for path in (done, pending):
        if path.exists():
            return json.loads(path.read_text(encoding="utf-8")).get("key")
    return None


class Runner:
    def __init__(self, spec: Spec, *, warn_truncation: bool = True):
        self.spec = spec
        self.warn_truncation = warn_truncation  # not part of any key: it changes what is said, not results
        self.out = spec.output
        self.keys: dict[str, str] = {}
        self.paths: dict[str, str] = {}  # model or stage name → what later stages load
        self.evaluations: dict[str, Path] = {}
        self.adapter_bases: dict[str, str] = {}  # a tiny adapter model → the model it adapts
        self.judgements: list[str] = []

    def run(self) -> dict[str, Any]:
        check_output_folder(self.out, "output folder")  # before the first stage, not inside it
        for name, model in self.spec.models.items():
            self._model(name, model)
        data_keys = {name: self._data_key(source) for name, source in self.spec.data.items()}
        for name, stage in self.spec.train.items():
            self._train(name, stage, data_keys)
        if self.spec.evaluate:
            self._evaluate()
        for pair in self.spec.judge.get("pairs", []):
            self._judge(pair)
        reports = self._report() if self.evaluations else []
        return {
            "output": str(self.out),
            "stages": self.keys,
            "evaluations": {name: str(path) for name, path in self.evaluations.items()},
            "judgements": self.judgements,
            "reports": reports,
        }

    # -- inputs ---------------------------------------------------------------------------
    def _model(self, name: str, model: dict[str, Any]) -> None:
        if "path" in model:
            self.paths[name] = str(model["path"])
            self.keys[name] = provenance.content_key(provenance.model_identity(model["path"]))
            return
        from alignment_tax.models.tiny import build_tiny_model

        tiny = {"kind": "lm", "size": "tiny", "seed": 0, **(model["tiny"] or {})}
        folder = self.out / "models" / name
        if tiny["kind"] == "adapter":
            self._tiny_adapter(name, tiny, folder)
            return
        payload = {"tiny": tiny}
        if tiny.get("pretrained"):  # the shipped weights are the input
            from alignment_tax.models.pretrain import SHIPPED_WEIGHTS

            payload["weights"] = file_sha256(SHIPPED_WEIGHTS)
        key, _ = run_stage(folder, payload, lambda f: {"path": str(build_tiny_model(f / "model", **tiny))})
        self.keys[name], self.paths[name] = key, str(folder / "model")

    def _tiny_adapter(self, name: str, tiny: dict[str, Any], folder: Path) -> None:
        from alignment_tax.models.tiny_adapter import build_tiny_adapter

        base = tiny["base"]
        payload = {"tiny": tiny, "base": self.keys[base]}

        def work(f: Path) -> dict[str, str]:
            adapter = build_tiny_adapter(
                Path(self.paths[base]).resolve(),  # the adapter records its base: not relative to this folder
                f / "adapter",
                seed=tiny["seed"],
                zero=bool(tiny.get("zero")),
                rank=int(tiny.get("rank", 8)),
            )
            return {"path": str(adapter)}

        key, _ = run_stage(folder, payload, work)
        self.keys[name], self.paths[name] = key, str(folder / "adapter")
        self.adapter_bases[name] = base

    def data_path(self, source: str) -> str:
        if source.startswith(SAMPLES_PREFIX):
            from alignment_tax.data import samples

            return str(getattr(samples, source[len(SAMPLES_PREFIX) :].upper()))
        return source

    def _data_key(self, source: str) -> str:
        path = Path(self.data_path(source))
        return file_sha256(path) if path.is_file() else source

    # -- stages ---------------------------------------------------------------------------
    def _custom(self, name: str, stage: dict[str, Any], data_keys: dict[str, str]) -> None:
        """Your own training command; ``{output}``, ``{model}``, ``{adapter}``, ``{embedder}`` and
        ``{train_data}`` are replaced (shell-quoted), and it must leave an adapter in ``{output}/adapter``."""
        import shlex
        import subprocess

        from alignment_tax.errors import UserError

        inputs = {role: self.keys.get(stage.get(role)) for role in ("model", "adapter", "embedder")}
        payload = {"command": stage["command"], "inputs": inputs, "data": data_keys.get(stage.get("train_data"))}

        def work(folder: Path) -> dict[str, Any]:
            values = {role: self.paths.get(stage.get(role), "") for role in ("model", "adapter", "embedder")}
            values.update(
                output=str(folder), train_data=self.data_path(self.spec.data.get(stage.get("train_data"), ""))
            )
            command = stage["command"].format(**{key: shlex.quote(value) for key, value in values.items()})
            _log(f"train {name}: {command}")
            if subprocess.run(command, shell=True).returncode != 0:
                raise UserError(f"train.{name}: the command failed: {command}")
            if not (folder / "adapter" / "adapter_config.json").exists():
                raise UserError(f"train.{name}: the command left no PEFT adapter in {folder / 'adapter'}")
            return {"adapter": str(folder / "adapter")}

        key, summary = run_stage(self.out / "train" / name, payload, work)
        self.keys[name], self.paths[name] = key, summary["adapter"]

    def _train(self, name: str, stage: dict[str, Any], data_keys: dict[str, str]) -> None:
        if "command" in stage:
            self._custom(name, stage, data_keys)
            return
        from alignment_tax.trainers import load_config, train

        config_file = stage_config_path(self.spec, stage)
        overrides = [f"{key}={json.dumps(value)}" for key, value in (stage.get("set") or {}).items()]
        config = load_config(
            stage["method"], config_file, overrides, task=stage.get("task"), max_steps=stage.get("max_steps")
        )
        inputs = {role: self.keys.get(stage.get(role)) for role in ("model", "adapter", "embedder")}
        payload = {"config": config, "inputs": inputs, "data": data_keys[stage["train_data"]]}

        def work(folder: Path) -> dict[str, Any]:
            return train(
                config,
                model=self.paths.get(stage.get("model")),
                adapter=self.paths.get(stage.get("adapter")),
                train_data=self.data_path(self.spec.data[stage["train_data"]]),
                output=str(folder),
                embedder=self.paths.get(stage.get("embedder")),
            )

        key, summary = run_stage(self.out / "train" / name, payload, work)
        self.keys[name] = key
        self.paths[name] = summary.get("adapter") or summary.get("embedder") or str(self.out / "train" / name)

    def _evaluate(self) -> None:
        from alignment_tax.data.samples import evaluation_data
        from alignment_tax.evaluation.engines import VLLMOptions
        from alignment_tax.evaluation.evaluate import EvaluateOptions, evaluate
        from alignment_tax.evaluation.served import ServerOptions

        settings = dict(self.spec.evaluate.get("options") or {})
        engine_settings = VLLMOptions(**(settings.pop("vllm", None) or {}))  # keys checked by load_spec
        server_settings = ServerOptions(**(settings.pop("server", None) or {}))
        data = dict(evaluation_data()) if settings.pop("samples", False) else {}
        data.update(settings.pop("data", None) or {})
        if "max_gen_toks" in settings:
            from alignment_tax.evaluation.generation_caps import check_caps

            settings["max_gen_toks"] = check_caps(settings["max_gen_toks"] or {})
        embedder = settings.pop("embedder", None)
        tasks = list(self.spec.evaluate["tasks"])

        def options_for(run: str) -> EvaluateOptions:
            is_stage = run in self.spec.train
            is_adapter = is_stage or run in self.adapter_bases
            model = self.spec.train[run].get("model") if is_stage else self.adapter_bases.get(run, run)
            return EvaluateOptions(
                tasks=tasks,
                output="",
                data=data,
                embedder=self.paths.get(embedder),
                model=self.paths.get(model),
                adapter=self.paths[run] if is_adapter else None,
                base="auto" if is_adapter else self.paths.get("base"),
                vllm=engine_settings,
                server=server_settings,
                warn_truncation=self.warn_truncation,
                **settings,
            )

        # What decides every evaluation's results besides its own model: part of each stage's key.
        shared = {"tasks": tasks, "data": data, "settings": settings, "embedder": self.keys.get(embedder)}
        engine = settings.get("engine", "hf")
        if engine == "vllm":
            shared["vllm"] = asdict(engine_settings)
        if engine == "server":  # the served names; the URL may move without changing results
            shared["server"] = {"model": server_settings.model, "base_model": server_settings.base_model}
        for run in self.spec.evaluate.get("runs", []):

            def work(folder: Path, options: EvaluateOptions = options_for(run)) -> dict[str, Any]:  # noqa: B008 - binds this run
                options.output = str(folder)
                results = evaluate(options)
                return {"results": str(folder / "results.json"), "base": (results.get("base") or {}).get("results")}

            key, summary = run_stage(self.out / "eval" / run, {"run": self.keys[run], **shared}, work)
            self.keys[f"eval:{run}"] = key
            self.evaluations[run] = self.out / "eval" / run
            if summary.get("base") and "base" not in self.evaluations:
                self.evaluations["base"] = Path(summary["base"]).parent
        for run, scales in (self.spec.evaluate.get("sweep") or {}).items():
            self._sweep(run, [float(s) for s in scales], options_for(run), shared)

    def _sweep(self, run: str, scales: list[float], options: Any, shared: dict[str, Any]) -> None:
        """``evaluate.sweep: {RUN: [strengths]}``: the adapter at each strength, beside the other evaluations."""
        from alignment_tax.evaluation.sweep import scale_label, sweep

        options.output = str(self.out / "eval")  # the runs' root: the sweep shares their base

        def work(folder: Path) -> dict[str, Any]:
            return sweep(options, scales, prefix=f"{run}_", adapters=folder / "adapters")

        key, _ = run_stage(
            self.out / "eval" / f"{run}_sweep", {"sweep": self.keys[run], "scales": scales, **shared}, work
        )
        self.keys[f"sweep:{run}"] = key
        for scale in scales:
            self.evaluations[f"{run}@{scale:g}"] = self.out / "eval" / f"{run}_{scale_label(scale)}"

    def _judge(self, pair: dict[str, str]) -> None:
        from alignment_tax.judge.pipeline import JudgeOptions, run_judge

        judge_model = str(self.spec.judge.get("judge_model", "gpt-5.2"))
        if judge_model.startswith("hf:") and judge_model[3:] in self.paths:
            judge_model = f"hf:{self.paths[judge_model[3:]]}"  # a model named in the spec
        settings = dict(self.spec.judge.get("options") or {})
        name = f"{pair['a']}_vs_{pair['b']}_{pair['task']}"
        payload = {
            "pair": pair,
            "judge_model": judge_model,
            "settings": settings,
            "runs": [
                self.keys.get(f"eval:{pair['a']}"),
                self.keys.get(f"eval:{pair['b']}"),
                str(self.evaluations.get("base")),
            ],
        }

        def work(folder: Path) -> dict[str, Any]:
            options = JudgeOptions(
                run_a=str(self.evaluations[pair["a"]]),
                run_b=str(self.evaluations[pair["b"]]),
                task=pair["task"],
                output=str(folder / "judge.json"),
                judge_model=judge_model,
                **settings,
            )
            result = run_judge(options)
            return {"output": str(folder / "judge.json"), "win_rate": result.get("win_rate")}

        key, summary = run_stage(self.out / "judge" / name, payload, work)
        self.keys[f"judge:{name}"] = key
        self.judgements.append(summary["output"])

    def _report(self) -> list[str]:
        from alignment_tax.reports.build import build_report

        runs = [str(path) for name, path in self.evaluations.items() if name != "base"]
        baseline = self.spec.report.get("baseline")
        written = []
        for suffix in self.spec.report.get("formats", ["html", "md"]):
            out = self.out / f"report.{suffix}"
            build_report(
                runs,
                out,
                baseline=baseline,
                judge_files=self.judgements,
                controls=self.spec.report.get("controls") or {},
                reference=self.spec.report.get("reference"),
                reference_map=self.spec.report.get("reference_map"),
            )
            written.append(str(out))
        return written


def run_experiment(spec: Spec, *, warn_truncation: bool = True) -> dict[str, Any]:
    return Runner(spec, warn_truncation=warn_truncation).run()
