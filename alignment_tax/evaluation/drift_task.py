"""``evaluate``'s drift task: its corpus, read and checked before any model loads, and the
per-token pass over it, read back when a finished pass matches, else run (resuming) and written.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from alignment_tax import provenance
from alignment_tax.errors import UserError
from alignment_tax.evaluation import data_parallel
from alignment_tax.models.loading import LoadedModel, load_causal_lm

if TYPE_CHECKING:
    from alignment_tax.evaluation.evaluate import EvaluateOptions


def load_drift_corpus(options: EvaluateOptions) -> tuple[str, list[str], str]:
    """(where from, texts after --limit, sha256 of those texts), checked before any model loads."""
    from alignment_tax.data import CMRC_HUB, DataDir, load_corpus, records_sha256
    from alignment_tax.data.layout import CMRC_PASSAGE_FIELD

    cmrc_override = options.data.get("cmrc2018")
    if isinstance(cmrc_override, dict):
        cmrc_override = cmrc_override.get("path")
    if options.drift_corpus:
        source, split = options.drift_corpus, "train"
    elif cmrc_override:  # the CMRC passages this run already uses
        source, split = str(cmrc_override), "validation"
    elif options.data_dir:
        source, split = str(DataDir(options.data_dir).require("cmrc_dev")), "validation"
    else:
        source, split = CMRC_HUB.id, CMRC_HUB.split
    field = CMRC_PASSAGE_FIELD if source in (CMRC_HUB.id, cmrc_override) else "text"
    texts = load_corpus(source, field=field, split=split, dedupe=True)
    if options.limit is not None:
        texts = texts[: options.limit]
    if not texts:
        raise UserError(f"the drift corpus {source} is empty")
    return source, texts, records_sha256(texts)


def drift_summary(
    loaded: LoadedModel,
    corpus: tuple[str, list[str], str],
    candidate_fingerprint: str,
    options: EvaluateOptions,
    output: Path,
    name: str,
) -> dict[str, Any]:
    """The drift results of ``loaded`` against its base on ``corpus``, files under ``output``.

    ``candidate_fingerprint`` is the candidate's generation fingerprint; ``name`` is what the
    progress bar calls the run.
    """
    from alignment_tax.evaluation.drift_batches import resolve_packing
    from alignment_tax.evaluation.drift_results import TEXTS_FILE, TOKENS_FILE, finished_drift, summarize_drift
    from alignment_tax.models.placement import input_device

    source, texts, sha256 = corpus
    # A full fine-tune is compared with a separately loaded --base; an adapter with itself, disabled.
    base_name = None if loaded.has_adapter else options.base
    # Resolved as token_drift resolves it: by where the weights compute.
    packed = resolve_packing(options.drift_packing, input_device(loaded.model).type)
    key = {
        "candidate": candidate_fingerprint,
        "base": provenance.model_identity(base_name),
        "corpus": sha256,
        "window": [options.drift_window, options.drift_stride],
    }
    if packed:  # packed values differ from padded ones in the last bits; padded keeps its earlier key
        key["packing"] = "on"
    fingerprint = provenance.content_key(key)
    # A finished pass with the same fingerprint is read back, not recomputed (rank 0 reads it for all).
    drift = data_parallel.on_main(lambda: finished_drift(output, fingerprint))
    reused = drift is not None
    if not reused:
        drift = _token_drift(loaded, texts, base_name, fingerprint, options, output, name, packed)
    summary = summarize_drift(drift)
    summary.update(
        corpus={"source": source, "sha256": sha256, "n_texts": len(texts)},
        packing="on" if packed else "off",
        base="disabled adapter" if base_name is None else base_name,
        files={"tokens": TOKENS_FILE, "texts": TEXTS_FILE},
        reused=reused,
    )
    return summary


def _token_drift(
    loaded: LoadedModel,
    texts: list[str],
    base_name: str | None,
    fingerprint: str,
    options: EvaluateOptions,
    output: Path,
    name: str,
    packed: bool,
):
    """The per-token pass, resuming from ``drift_partial.npz``, written out with its fingerprint.

    The partial file goes only once the finished files are on disk: an interruption at any
    point leaves one or the other.
    """
    from alignment_tax.evaluation.drift import check_same_tokenizer, token_drift
    from alignment_tax.evaluation.drift_checkpoint import DriftCheckpoint
    from alignment_tax.evaluation.drift_results import write_drift_files

    base_model = None
    if base_name is not None:
        # A full fine-tune: the only case that holds two copies of the weights.
        base_model, base_tokenizer = load_causal_lm(base_name, loaded.device, loaded.dtype, loaded.placement)
        check_same_tokenizer(loaded.tokenizer, base_tokenizer)
    checkpoint = DriftCheckpoint(output / "drift_partial.npz", fingerprint)
    drift = token_drift(
        loaded.model,
        loaded.tokenizer,
        texts,
        base_model=base_model,
        batch_size=options.batch_size if isinstance(options.batch_size, int) else 8,
        window=options.drift_window,
        stride=options.drift_stride,
        progress=f"drift {name}",
        checkpoint=checkpoint,
        packing="on" if packed else "off",
    )
    if data_parallel.is_main():  # every rank holds the whole pass; one writes it
        write_drift_files(output, drift, fingerprint)
        checkpoint.remove()
    return drift
