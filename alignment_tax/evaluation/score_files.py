"""``alignment-tax score``: metrics on outputs that already exist, no model run."""

from __future__ import annotations

import json
from pathlib import Path

from alignment_tax.data.readers import file_sha256, read_json, read_records
from alignment_tax.errors import UserError
from alignment_tax.metrics.cmrc import score_predictions
from alignment_tax.metrics.scripts import parse_tolerance, script_for
from alignment_tax.metrics.suites import headline_suite, translation_suite
from alignment_tax.paths import check_output_file, write_text_atomically


def _check_squad_layout(dataset: object, path: str) -> None:
    try:
        for article in dataset["data"]:
            for paragraph in article["paragraphs"]:
                for qa in paragraph["qas"]:
                    qa["id"], [answer["text"] for answer in qa["answers"]]
    except (KeyError, TypeError) as error:
        raise UserError(
            f"{path}: not a SQuAD-layout dataset (data → paragraphs → qas → id/answers → text); missing {error}"
        ) from None


def score_cmrc_files(data_path: str, predictions_path: str) -> dict:
    """The official CMRC 2018 scorer's output for a dataset file and a predictions file."""
    dataset = read_json(data_path)
    _check_squad_layout(dataset, data_path)
    predictions = read_json(predictions_path)
    if not isinstance(predictions, dict):
        raise UserError(f"{predictions_path}: predictions must be a JSON object {{question_id: answer}}")
    result = score_predictions(dataset, predictions)
    result["FILE"] = predictions_path
    return result


def _reference_of(row: dict, where: str) -> str:
    reference = row["reference"]
    if isinstance(reference, list):
        if len(reference) != 1:
            raise UserError(f"{where}: `reference` must be one string (got a list of {len(reference)})")
        reference = reference[0]
    if not isinstance(reference, str):
        raise UserError(f"{where}: `reference` must be a string")
    return reference


def _read_prediction_rows(path: str) -> tuple[list[str], list[str]]:
    rows = read_records(path)
    predictions, references = [], []
    for index, row in enumerate(rows, start=1):
        where = f"{path} row {index}"
        missing = [column for column in ("prediction", "reference") if column not in row]
        if missing:
            raise UserError(f"{where}: missing {', '.join(missing)} (found columns: {', '.join(sorted(row))})")
        prediction = row["prediction"]
        if prediction is None:
            prediction = ""
        if not isinstance(prediction, str):
            raise UserError(f"{where}: `prediction` must be a string")
        predictions.append(prediction)
        references.append(_reference_of(row, where))
    return predictions, references


def score_generation_file(
    task: str,
    predictions_path: str,
    target_lang: str,
    embedder: str | None = None,
    items_path: str | None = None,
    lang_tolerance: str | None = None,
) -> dict:
    """Aggregate metrics for a JSONL of ``{prediction, reference}`` rows (``task``: mt or headline)."""
    script_for(target_lang)
    tolerance = parse_tolerance(lang_tolerance)
    if items_path:
        check_output_file(items_path, "--items")  # before the metrics it would otherwise lose
    predictions, references = _read_prediction_rows(predictions_path)
    encoder = None
    if embedder:
        from alignment_tax.models.loading import load_embedder

        encoder = load_embedder(embedder)
    suite = translation_suite if task == "mt" else headline_suite
    result = suite(predictions, references, target_lang=target_lang, encoder=encoder, tolerance=tolerance)
    if items_path:
        Path(items_path).parent.mkdir(parents=True, exist_ok=True)
        write_text_atomically(items_path, "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in result.items))
    return {
        "task": task,
        "target_lang": target_lang,
        **({} if tolerance.strict else {"lang_tolerance": str(tolerance)}),
        "n": len(predictions),
        "metrics": result.aggregates,
        "signatures": result.signatures,
        "embedder": embedder,
        "predictions": predictions_path,
        "predictions_sha256": file_sha256(predictions_path),
    }
