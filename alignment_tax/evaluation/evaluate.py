"""``alignment-tax evaluate``: score a checkpoint (and its base) on the target tasks and the tax.

Order of work, chosen so that nothing computed is lost: tasks and data are checked before any
model loads; the base is evaluated (or reused) first and written to its own folder; every
generation is stored as it is made, so a rerun with the same arguments resumes.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from alignment_tax import provenance
from alignment_tax.errors import UserError
from alignment_tax.evaluation import data_parallel
from alignment_tax.evaluation.checks import AUTO_BASE, DRIFT_TASK, check_evaluate_inputs, check_evaluate_options
from alignment_tax.evaluation.drift_task import drift_summary, load_drift_corpus
from alignment_tax.evaluation.engines import ENGINES, Role, VLLMOptions, build_engine, vllm_lm_class
from alignment_tax.evaluation.evaluate_settings import (
    batching_settings,
    checked_placement,
    own_base_tokenizers,
    scoring_settings,
)
from alignment_tax.evaluation.generation_cache import GenerationCache
from alignment_tax.evaluation.generation_caps import apply_caps, check_cap_overrides, effective_caps
from alignment_tax.evaluation.lm_eval_run import RoleRun, run_role
from alignment_tax.evaluation.output_lock import held_by_main, remove_if_unused
from alignment_tax.evaluation.run_files import (
    base_folder,
    compute_tax,
    health_payload,
    held_base,
    previous_results,
    tasks_payload,
    write_run,
)
from alignment_tax.evaluation.served import ServerOptions
from alignment_tax.metrics.scripts import canonical_tolerance
from alignment_tax.models.loading import (
    LoadedModel,
    describe_for_evaluation,
    load_embedder,
    load_for_evaluation,
    resolve_device,
)
from alignment_tax.models.placement import Placement, offload_folder
from alignment_tax.paths import check_output_folder
from alignment_tax.urls import public_url

TRUNCATION_WARNING_RATE = 0.01  # above this share of capped generations, evaluate says so


@dataclass
class EvaluateOptions:
    tasks: list[str]
    output: str
    model: str | None = None
    adapter: str | None = None
    base: str | None = None  # None: no base; "auto": the adapter's base; else a model path or id
    limit: int | None = None
    batch_size: int | str = 8
    device: str = "auto"
    dtype: str = "auto"
    embedder: str | None = None
    data_dir: str | None = None
    data: dict[str, str] = field(default_factory=dict)
    seed: int = 1234
    enable_thinking: bool = False
    bootstrap_iters: int = 1000
    drift_corpus: str | None = None  # default: the CMRC 2018 passages in use, deduplicated
    drift_window: int | None = None  # default: the model's context length
    drift_stride: int | None = None  # default: half the window
    drift_packing: str = "auto"  # windows packed into rows without padding: "on", "off", "auto" (CUDA only)
    max_gen_toks: dict[str, int] = field(default_factory=dict)  # per-task cap overrides (TASK → N)
    adapter_scale: float | None = None  # set by `sweep`: the adapter's LoRA update scaled by this
    adapter_scaled_from: str | None = None  # set by `sweep`: the adapter that was scaled
    checkpoint_step: int | None = None  # set by `evaluate --checkpoints`: the training step of the adapter
    lang_tolerance: str | None = None  # relaxes lang_consistency (metrics.scripts.parse_tolerance); None: strict
    # Weights spread by accelerate over GPUs, then CPU, then disk (lm-eval's parallelize=True):
    # "auto" (or balanced, sequential) or a {module: device} map; None: all on --device.
    device_map: str | dict[str, Any] | None = None
    max_memory: dict[str, str] | None = None  # accelerate's budget per device, e.g. {"0": "70GiB", "cpu": "100GiB"}
    offload_folder: str | None = None  # default: a temporary folder inside --output, removed at the end
    engine: str = "hf"  # who generates: "hf" (transformers), "vllm", or "server"; drift always uses transformers
    merge_adapter: bool = True  # hf: the candidate generates with its LoRA folded into the weights (exactly undone)
    vllm: VLLMOptions = field(default_factory=VLLMOptions)
    server: ServerOptions = field(default_factory=ServerOptions)
    # Off where the caller chose short caps on purpose and says so once itself (the demo): a warning per
    # task and model about a choice the user did not make is noise.
    warn_truncation: bool = True


DRIFT = DRIFT_TASK


def _task_metadata(options: EvaluateOptions) -> dict[str, Any]:
    metadata: dict[str, Any] = {"data": dict(options.data)}
    if options.lang_tolerance:
        metadata["lang_tolerance"] = options.lang_tolerance
    if options.data_dir:
        if not Path(options.data_dir).is_dir():
            raise UserError(f"data folder not found: {options.data_dir}")
        metadata["data_dir"] = str(Path(options.data_dir).resolve())
    return metadata


class _Evaluation:
    def __init__(self, options: EvaluateOptions, vllm_class: type | None):
        self.options = options
        self.vllm_class = vllm_class
        self.output = Path(options.output)
        self.name = self.output.resolve().name  # what progress bars call this run
        self.started = provenance.now()

    def run(self) -> dict[str, Any]:
        from alignment_tax.tasks.registry import resolve_tasks

        options = self.options
        check_evaluate_options(options)  # values first: nothing has loaded yet
        # One spelling per tolerance (None: strict), so equal tolerances share a base key.
        options.lang_tolerance = canonical_tolerance(options.lang_tolerance)
        check_evaluate_inputs(options)  # then names and paths, before lm-eval's slow task index
        check_output_folder(self.output, "--output")
        metadata = _task_metadata(options)
        if DRIFT in options.tasks and options.adapter is None and options.base in (None, AUTO_BASE):
            raise UserError("drift compares a candidate with its base: give --adapter, or --base for a full checkpoint")
        if options.engine not in ENGINES:
            raise UserError(f"unknown engine {options.engine!r}; choose one of {', '.join(ENGINES)}")
        data_parallel.check_supported(options.engine, options.batch_size)
        placement = checked_placement(options)
        if options.engine == "vllm" and self.vllm_class is None:
            self.vllm_class = vllm_lm_class()  # before any data or model loads
        lm_eval_tasks = [task for task in options.tasks if task != DRIFT]
        self.task_manager, self.task_names = resolve_tasks(lm_eval_tasks, metadata) if lm_eval_tasks else (None, [])
        from alignment_tax.evaluation.lm_eval_run import load_tasks, task_data_hashes

        tasks = load_tasks(self.task_names, self.task_manager) if self.task_names else {}
        check_cap_overrides(tasks, options.max_gen_toks)
        self.data_hashes = task_data_hashes(tasks)
        drift_corpus = load_drift_corpus(options) if DRIFT in options.tasks else None
        if drift_corpus is not None:
            self.data_hashes[DRIFT] = {
                "source": drift_corpus[0],
                "sha256": drift_corpus[2],
                "n_docs": len(drift_corpus[1]),
            }
        created = data_parallel.is_main() and not self.output.exists()
        try:
            with held_by_main(self.output, "evaluate"), offload_folder(placement, self.output) as self.placement:
                return self._run_locked(tasks, drift_corpus)
        except BaseException:
            if created:  # a folder this run made and wrote nothing into would look like a result
                remove_if_unused(self.output)
            raise

    def _run_locked(self, tasks: dict[str, Any], drift_corpus: tuple[str, list[str], str] | None) -> dict[str, Any]:
        from alignment_tax.tasks.registry import OUR_TASKS

        options = self.options
        loaded = self._load(options, self.placement)
        # One set of caps for both roles, the base answering under the same rules: they hold the
        # longest reference in the candidate's tokens and in a separately loaded base's own.
        others = own_base_tokenizers(options, loaded)
        self.caps = effective_caps(tasks, loaded.tokenizer, options.max_gen_toks, OUR_TASKS, others)
        if self.task_manager is not None:
            apply_caps(self.task_manager, self.caps)
        # Only rank 0 scores (lm-eval returns results there alone; see lm_eval_run.run_role).
        wanted = options.embedder and data_parallel.is_main()
        self.encoder = load_embedder(options.embedder, device=loaded.device) if wanted else None
        caps = {task: cap["max_gen_toks"] for task, cap in self.caps.items()}
        self.batching = batching_settings(options, loaded)
        self.settings = scoring_settings(options, loaded, self.data_hashes, caps)
        engine = build_engine(loaded, options, self.vllm_class)
        try:
            base_summary = self._base(engine, loaded) if options.base is not None else None
            role = Role(loaded.name, loaded.adapter)
            fingerprint = self._generation_fingerprint(loaded.name, loaded.adapter, loaded, engine.identity(role))
            candidate = self._run_role(engine, role, self.output / "cache" / "candidate.sqlite", fingerprint, self.name)
        finally:
            engine.close()
        payload = self._payload(loaded.name, loaded.adapter, loaded, candidate)
        if getattr(engine, "adapter_merge", None) is not None:  # hf with an adapter: folded in or not, and why
            payload["config"]["adapter_merge"] = engine.adapter_merge
        payload["base"] = base_summary
        if base_summary is not None:
            payload["tax"] = compute_tax(payload["tasks"], base_summary.pop("tasks"))
        if drift_corpus is not None:
            if loaded.model is None:  # vLLM held the weights for generation; drift needs logits
                loaded = load_for_evaluation(
                    options.model, options.adapter, options.device, options.dtype, self.placement
                )
            fingerprint = self._generation_fingerprint(loaded.name, loaded.adapter, loaded)
            payload["drift"] = drift_summary(loaded, drift_corpus, fingerprint, options, self.output, self.name)
        self._finish(payload)
        if data_parallel.is_main():
            write_run(self.output, payload, candidate)
        return payload

    @staticmethod
    def _load(options: EvaluateOptions, placement: Placement) -> LoadedModel:
        if options.engine == "hf":
            return load_for_evaluation(options.model, options.adapter, options.device, options.dtype, placement)
        # vLLM (or the server) holds the weights; "auto" is its own choice (the checkpoint's dtype).
        return describe_for_evaluation(options.model, options.adapter, resolve_device(options.device), options.dtype)

    def _generation_fingerprint(
        self, name: str, adapter: str | None, loaded: LoadedModel, engine_identity: dict[str, Any] | None = None
    ) -> str:
        """What decides a response besides the request itself (which keys each cached entry).

        Not the device map: weights offloaded to CPU or disk give the held-whole model's outputs
        exactly (tests/test_offload.py), so a run may resume with another placement.
        """
        return provenance.content_key(
            {
                "model": provenance.model_identity(name),
                "adapter": provenance.model_identity(adapter),
                "dtype": loaded.dtype,
                # Since adapters on a half-precision base compute in its dtype (models.loading).
                **({"adapter_dtype": loaded.dtype} if adapter and loaded.dtype in ("bfloat16", "float16") else {}),
                "engine": self.options.engine,
                **self.batching,
                **(engine_identity or {}),
                "seed": self.options.seed,
                "enable_thinking": self.options.enable_thinking,
            }
        )

    def _run_role(self, engine: Any, role: Role, cache_path: Path, fingerprint: str, name: str) -> RoleRun:
        from alignment_tax.progress import lm_eval_bars

        cache = GenerationCache(cache_path, fingerprint)
        try:
            with engine.lm(role, cache) as lm, lm_eval_bars(f"evaluate {name}"):
                run = run_role(lm, self.task_names, self.task_manager, self.options, self.encoder)
        finally:
            cache.close()
        if self.options.warn_truncation:
            warn_about_truncation(role, run, self.caps)
        return run

    def _base(self, engine: Any, loaded: LoadedModel) -> dict[str, Any]:
        options = self.options
        via_adapter = loaded.has_adapter and options.base in (AUTO_BASE, loaded.name)
        base_name = loaded.name if via_adapter else options.base
        key = provenance.content_key({"base": provenance.model_identity(base_name), **self.settings})
        folder = base_folder(self.output, key)
        summary = {
            "model": base_name,
            "via": "disabled adapter" if via_adapter else "separate load",
            "results": str(folder / "results.json"),
            "key": key,
        }
        # Held from the look-up to the write: a run started beside this one waits, then reuses the base.
        with held_base(folder, self.name):
            previous = previous_results(folder)
            if previous is not None:
                logging.getLogger(__name__).info("reusing base results from %s", folder / "results.json")
                return {**summary, "reused": True, "tasks": previous["tasks"]}
            # The disabled adapter's base is the candidate's model: its device map is the candidate's.
            network = loaded.model if via_adapter else None
            base_loaded = LoadedModel(network, loaded.tokenizer, base_name, None, loaded.device, loaded.dtype)
            role = Role(base_name)
            fingerprint = self._generation_fingerprint(base_name, None, base_loaded, engine.identity(role))
            run = self._run_role(engine, role, folder / "cache.sqlite", fingerprint, f"base of {self.name}")
            payload = self._payload(base_name, None, base_loaded, run)
            self._finish(payload)
            if data_parallel.is_main():
                write_run(folder, payload, run)
        return {**summary, "reused": False, "tasks": payload["tasks"]}

    def _payload(self, name: str, adapter: str | None, loaded: LoadedModel, run: RoleRun) -> dict[str, Any]:
        config = asdict(self.options)
        config.update(
            device=loaded.device,
            dtype=loaded.dtype,
            # Where each module computed (hf_device_map), or the request where this process holds no such model.
            device_map=loaded.device_map or self.options.device_map,
            generation=run.generation,
            generation_caps=self.caps,
            lm_eval=run.lm_eval_config,
            # How many processes shared the work: a record only. Outputs are identical for any
            # number (data_parallel), so it is in neither the generation fingerprint nor the base key.
            world_size=data_parallel.world_size(),
        )
        if config["server"]["base_url"]:  # never write credentials a URL may carry
            config["server"]["base_url"] = public_url(config["server"]["base_url"])
        return {
            "model": name,
            "adapter": adapter,
            "weights": provenance.weights(name, adapter),
            "base": None,
            "tasks": tasks_payload(run),
            "health": health_payload(run),
            "tax": None,
            "signatures": run.signatures,
            "config": config,
            "data": self.data_hashes,
            "seed": self.options.seed,
            "started": self.started,
        }

    def _finish(self, payload: dict[str, Any]) -> None:
        payload["versions"] = provenance.versions()
        payload["finished"] = provenance.now()


def warn_about_truncation(role: Role, run: RoleRun, caps: dict[str, dict[str, Any]]) -> None:
    """One line per task whose generations hit the cap more often than 1%."""
    who = role.adapter or role.model
    for task, scores in run.scores.items():
        rate = scores.metrics.get("truncated_rate")
        if rate is not None and rate > TRUNCATION_WARNING_RATE and task in caps:
            cap = caps[task]["max_gen_toks"]
            print(
                f"alignment-tax evaluate: warning: {task}: {100 * rate:.1f}% of {who}'s generations stopped at "
                f"the {cap}-token cap (raise it with --max-gen-toks {task}=N)",
                file=sys.stderr,
                flush=True,
            )


def evaluate(options: EvaluateOptions, *, vllm_class: type | None = None) -> dict[str, Any]:
    """Run the evaluation and write ``results.json`` and ``samples/`` under ``options.output``.

    ``vllm_class`` replaces lm-eval's ``VLLM`` model class for ``engine="vllm"`` (any class with
    its constructor and ``lora_request`` attribute; the tests use a transformers stand-in).
    """
    return _Evaluation(options, vllm_class).run()
