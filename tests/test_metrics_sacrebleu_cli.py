"""Our BLEU/chrF equal the sacrebleu CLI's, on files preprocessed as our signature states.

The fixtures hold text that NFC changes (CJK compatibility ideographs, the Angstrom and Ohm signs,
a combining accent, precomposed Tibetan letters) and non-breaking tshegs, so an unrecorded
normalisation step would show up as a difference from the CLI.
"""

import json
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from alignment_tax.evaluation.score_files import score_generation_file
from alignment_tax.metrics.segmentation import segment_for_bleu
from alignment_tax.metrics.suites import translation_suite

# Each prediction writes some characters as their compatibility ideographs (U+F900 豈, U+F9B5 例,
# U+F92C 郎, U+F9E0 易, U+FA10 塚, U+F91D 欄) where the reference has the unified ones, or the
# other way round; one line mixes in Latin letters that NFC changes.
ZH_REFERENCES = [
    "豈有此理，这个例子说明了问题。",
    "新郎和新娘在贸易公司的门口合影。",
    "考古队在塚中发现了一块刻有文字的石碑。",
    "请在表格的第三栏填写您的姓名和电话。",
    "实验室用埃（Å）和欧姆（Ω）作单位，咖啡馆叫 café。",
]
ZH_PREDICTIONS = [
    "\uf900有此理，这个\uf9b5子说明了问题。",
    "新\uf92c和新娘在贸\uf9e0公司门口合影。",
    "考古队在\ufa10中发现了一块刻着文字的石碑。",
    "请在表格的第三\uf91d填写你的姓名和电话。",
    "实验室用埃（\u212b）和欧姆（\u2126）作单位，咖啡馆叫 cafe\u0301。",
]
# References with the non-breaking tsheg (U+0F0C) and precomposed letters (U+0F43 GHA, U+0F73 II)
# that NFC decomposes; predictions with the ordinary tsheg and the decomposed letters.
BO_REFERENCES = [
    "བཀྲ\u0f0cཤིས\u0f0cབདེ\u0f0cལེགས\u0f0cཡིན\u0f0cནོ།",
    "\u0f43ང\u0f0cཆེན\u0f0cཀ\u0f73\u0f0cཔ\u0f0cཆོས\u0f0cཀྱི\u0f0cཡི\u0f0cགེ\u0f0cཡིན།",
    "ང\u0f0cཚོ\u0f0cསློབ\u0f0cགྲྭ\u0f0cལ\u0f0cའགྲོ\u0f0cགི\u0f0cཡོད།",
]
BO_PREDICTIONS = [
    "བཀྲ་ཤིས་བདེ་ལེགས་ཡིན་ནོ།",
    "\u0f42\u0fb7ང་ཆེན་ཀ\u0f71\u0f72་པ་ཆོས་ཀྱི་ཡི་གེ།",
    "ང་ཚོ་སློབ་གྲྭ་ལ་འགྲོ་གི་ཡོད་རེད།",
]

# What each step named in a signature's ``pre:`` element does, written out independently of the
# package where the step is a plain Unicode operation.
STEPS = {
    "nfc": lambda text: unicodedata.normalize("NFC", text),
    "tsheg-fold": lambda text: text.replace("\u0f0c", "\u0f0b"),
    "bo-syllables": segment_for_bleu,
}


def signature_element(signature: str, key: str) -> str | None:
    values = [element.split(":", 1)[1] for element in signature.split("|") if element.startswith(f"{key}:")]
    return values[0] if values else None


def preprocess_as_signature_states(lines: list[str], signature: str) -> list[str]:
    for step in (signature_element(signature, "pre") or "").split("+"):
        if step:
            lines = [STEPS[step](line) for line in lines]
    return lines


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def sacrebleu_cli(reference: Path, hypothesis: Path, metric: str, signature: str) -> dict:
    """The CLI's JSON for one metric, with the options our signature states."""
    command = [sys.executable, "-m", "sacrebleu", str(reference), "-i", str(hypothesis), "-m", metric, "-w", "4"]
    tokenize = signature_element(signature, "tok")
    if tokenize:
        command += ["--tokenize", tokenize]
    completed = subprocess.run(command, capture_output=True, text=True, check=True, timeout=60)
    return json.loads(completed.stdout)


@pytest.mark.parametrize(
    ("target_lang", "predictions", "references"),
    [("zh", ZH_PREDICTIONS, ZH_REFERENCES), ("bo", BO_PREDICTIONS, BO_REFERENCES)],
)
def test_score_mt_equals_the_sacrebleu_cli_after_the_stated_preprocessing(
    tmp_path, target_lang, predictions, references
):
    rows = [{"prediction": p, "reference": r} for p, r in zip(predictions, references)]
    predictions_path = tmp_path / "predictions.jsonl"
    predictions_path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    ours = score_generation_file("mt", str(predictions_path), target_lang)

    for metric in ("bleu", "chrf"):
        signature, score = ours["signatures"][metric], ours["metrics"][metric]
        assert signature_element(signature, "pre").startswith("nfc+tsheg-fold"), signature
        raw = sacrebleu_cli(
            write_lines(tmp_path / f"{metric}.ref", references),
            write_lines(tmp_path / f"{metric}.hyp", predictions),
            metric,
            signature,
        )
        # The fixture is one on which the preprocessing matters.
        assert abs(raw["score"] - score) > 0.5, (metric, raw["score"], score)
        preprocessed = sacrebleu_cli(
            write_lines(tmp_path / f"{metric}.pre.ref", preprocess_as_signature_states(references, signature)),
            write_lines(tmp_path / f"{metric}.pre.hyp", preprocess_as_signature_states(predictions, signature)),
            metric,
            signature,
        )
        assert score == pytest.approx(preprocessed["score"], abs=1e-4)
        # Ours is the CLI's signature plus what was done to the text before it.
        assert signature == f"{preprocessed['signature']}|pre:{signature_element(signature, 'pre')}"


def test_the_signature_names_the_tibetan_segmentation_for_bleu_only():
    signatures = translation_suite(BO_PREDICTIONS, BO_REFERENCES, target_lang="bo").signatures
    assert signature_element(signatures["bleu"], "pre") == "nfc+tsheg-fold+bo-syllables"
    assert signature_element(signatures["chrf"], "pre") == "nfc+tsheg-fold"
    assert signature_element(translation_suite(ZH_PREDICTIONS, ZH_REFERENCES).signatures["bleu"], "pre") == (
        "nfc+tsheg-fold"
    )
