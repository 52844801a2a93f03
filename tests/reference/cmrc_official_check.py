"""Maintainer's check: the package's CMRC 2018 scorer against the official v5 scorer, as it ran.

Needs the reference setup, which CI does not have: the official ``cmrc2018_evaluate.py`` (v5,
Python 2), Python 2.7 with NLTK 3.4.5, and NLTK's original Punkt data
(``tokenizers/punkt/english.pickle``). ``--ref DIR`` points at a folder holding
``cmrc/squad-style-data_cmrc2018_evaluate.py``, ``py2site/`` (NLTK 3.4.5) and ``nltk_data/``;
Python 2.7 is found through pyenv (``--pyenv-version``).

It regenerates the seeded prediction files (``cmrc_predictions.py``) and checks, against the
official stack:

1. Punkt parameters: abbreviations, collocations, sentence starters and orthographic context
   must equal those of NLTK's ``english.pickle``;
2. tokens: every run the scorer hands to NLTK in those files and in the dev set (answers and
   passages, lower-cased as scored, and raw for the sentence split): Punkt sentences and
   ``word_tokenize`` tokens must be identical;
3. per question: F1 and EM from the official script's own functions must equal the package's;
4. totals: the official script's printed AVERAGE/F1/EM must equal ``score_predictions``'s.

``--write tests/data/cmrc_official_scores.json`` records the official totals for the CI test
(``tests/test_metrics_cmrc.py``). Run from the repository root:

    python tests/reference/cmrc_official_check.py --ref /work/ref \\
        --write tests/data/cmrc_official_scores.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parents[1])]

from cmrc_predictions import SEED, dev_questions, digest, doc_files, prediction_files, punkt_parameters_digest  # noqa: E402

from alignment_tax.metrics.cmrc import cmrc_em, cmrc_f1, score_predictions, segment_pieces  # noqa: E402
from alignment_tax.metrics.cmrc_tokenize import english_punkt_parameters, sentence_splitter, word_tokenize  # noqa: E402

OFFICIAL_SCRIPT = "cmrc/squad-style-data_cmrc2018_evaluate.py"


def _py2(ref: Path, pyenv_version: str, *args: str) -> str:
    env = dict(
        os.environ, PYENV_VERSION=pyenv_version, PYTHONPATH=str(ref / "py2site"), NLTK_DATA=str(ref / "nltk_data")
    )
    env.pop("VIRTUAL_ENV", None)
    # The venv's python would shadow pyenv's shim; look the shim up outside the venv.
    path = [entry for entry in env["PATH"].split(os.pathsep) if not entry.startswith(sys.prefix)]
    env["PATH"] = os.pathsep.join(path)
    completed = subprocess.run(["python", *args], env=env, capture_output=True, text=True, check=True)
    return completed.stdout


def check_punkt_parameters(ref: Path) -> tuple[int, str]:
    """The package's Punkt English parameters against NLTK's own ``english.pickle`` (Python 3 copy)."""
    import pickle

    # NLTK's own data file from the reference setup, loaded only here, never by the package.
    with (ref / "nltk_data/tokenizers/punkt/PY3/english.pickle").open("rb") as handle:
        original = pickle.load(handle)._params
    mine = english_punkt_parameters()
    fields = ("abbrev_types", "collocations", "sent_starters")
    differences = [field for field in fields if set(getattr(original, field)) != set(getattr(mine, field))]
    if dict(original.ortho_context) != dict(mine.ortho_context):
        differences.append("ortho_context")
    sizes = ", ".join(f"{field} {len(getattr(mine, field))}" for field in (*fields, "ortho_context"))
    print(f"punkt parameters: {sizes}; differences from NLTK's english.pickle: {differences or 'none'}")
    return len(differences), punkt_parameters_digest(original)


def _runs_of(text: str) -> list[str]:
    return [piece for piece, is_run in segment_pieces(text) if is_run]


def check_tokens(ref: Path, pyenv: str, files: dict, questions, work: Path) -> int:
    runs: dict[str, None] = {}
    for question in questions:
        for text in (*question.answers, question.context):
            runs.update(dict.fromkeys(_runs_of(text)))
            runs[text] = None  # raw text: the sentence split on every passage and answer
    for predictions in files.values():
        for text in predictions.values():
            runs.update(dict.fromkeys(_runs_of(text)))
    ordered = list(runs)
    (work / "runs.json").write_text(json.dumps(ordered), encoding="utf-8")
    _py2(ref, pyenv, str(HERE / "py2_oracle.py"), "tokens", str(work / "runs.json"), str(work / "tokens.json"))
    official = json.loads((work / "tokens.json").read_text())
    differences = 0
    splitter = sentence_splitter()
    for run, (sentences, tokens) in zip(ordered, official["tokens"]):
        mine = (splitter.tokenize(run), word_tokenize(run))
        if mine != (sentences, tokens):
            differences += 1
            if differences <= 20:
                print(f"  token difference on {run[:80]!r}:\n    official {sentences} {tokens}\n    package  {mine}")
    print(
        f"tokens: {len(ordered)} runs, {differences} differences (NLTK {official['nltk']}, Python {official['python']})"
    )
    return differences


def official_totals(ref: Path, pyenv: str, data: Path, path: Path) -> dict:
    stdout = _py2(ref, pyenv, str(ref / OFFICIAL_SCRIPT), str(data), str(path))
    result = json.loads(stdout.strip().splitlines()[-1])
    return {key: result[key] for key in ("AVERAGE", "F1", "EM", "TOTAL", "SKIP")}


def check_questions(ref: Path, pyenv: str, data: Path, path: Path, dataset, predictions) -> int:
    out = path.with_suffix(".scores.json")
    _py2(ref, pyenv, str(HERE / "py2_oracle.py"), "scores", str(ref / OFFICIAL_SCRIPT), str(data), str(path), str(out))
    official = json.loads(out.read_text())["scores"]
    differences = 0
    for question in dev_questions(dataset):
        expected = official[question.qid.strip()]
        if question.qid.strip() not in predictions:
            continue
        prediction = predictions[question.qid.strip()]
        mine = [cmrc_f1(prediction, question.answers), cmrc_em(prediction, question.answers)]
        if expected is None or abs(mine[0] - expected[0]) > 1e-12 or mine[1] != expected[1]:
            differences += 1
            if differences <= 10:
                print(f"  {path.stem} {question.qid}: {prediction[:60]!r} official {expected} package {mine}")
    return differences


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ref", type=Path, default=Path(os.environ.get("CMRC_REF", "/work/ref")))
    parser.add_argument("--data", type=Path, default=HERE.parents[2] / "shared/data/cmrc2018/cmrc2018_dev.json")
    parser.add_argument("--pyenv-version", default="2.7.18")
    parser.add_argument("--out", type=Path, help="keep the prediction files here (default: a temporary folder)")
    parser.add_argument("--write", type=Path, help="write the official totals as JSON for the CI test")
    args = parser.parse_args(argv)

    dataset = json.loads(args.data.read_text(encoding="utf-8"))
    files = {**doc_files(dataset), **prediction_files(dataset)}
    work = args.out or Path(tempfile.mkdtemp(prefix="cmrc-official-"))
    work.mkdir(parents=True, exist_ok=True)
    for name, predictions in files.items():
        (work / f"{name}.json").write_text(json.dumps(predictions, ensure_ascii=False), encoding="utf-8")

    failures, punkt_digest = check_punkt_parameters(args.ref)
    failures += check_tokens(args.ref, args.pyenv_version, files, dev_questions(dataset), work)
    with ThreadPoolExecutor(max_workers=2) as pool:
        totals = dict(
            zip(
                files,
                pool.map(lambda n: official_totals(args.ref, args.pyenv_version, args.data, work / f"{n}.json"), files),
            )
        )
        per_question = dict(
            zip(
                files,
                pool.map(
                    lambda n: check_questions(
                        args.ref, args.pyenv_version, args.data, work / f"{n}.json", dataset, files[n]
                    ),
                    files,
                ),
            )
        )

    print(f"{'file':24} {'official AVG/F1/EM':>26} {'package AVG/F1/EM':>26} {'question diffs':>14}")
    for name, predictions in files.items():
        mine = score_predictions(dataset, predictions)
        official = totals[name]
        same = all(abs(float(mine[key]) - float(official[key])) <= 0.01 for key in ("AVERAGE", "F1", "EM"))
        same = same and (mine["TOTAL"], mine["SKIP"]) == (official["TOTAL"], official["SKIP"])
        failures += per_question[name] + (not same)
        row = lambda r: "/".join(r[key] for key in ("AVERAGE", "F1", "EM"))  # noqa: E731
        print(f"{name:24} {row(official):>26} {row(mine):>26} {per_question[name]:>14}{'' if same else '  MISMATCH'}")

    if args.write:
        record = {
            "about": "Official CMRC 2018 v5 scorer's totals on the seeded files of tests/reference/cmrc_predictions.py",
            "official": {
                "script": "squad-style-data/cmrc2018_evaluate.py v5",
                "python": "2.7.18",
                "nltk": "3.4.5",
                "punkt": "NLTK english.pickle",
            },
            "seed": SEED,
            "punkt_parameters_sha256": punkt_digest,
            "dataset_sha256": hashlib.sha256(args.data.read_bytes()).hexdigest(),
            "files": {name: {**totals[name], "sha256": digest(files[name])} for name in files},
        }
        args.write.parent.mkdir(parents=True, exist_ok=True)
        args.write.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {args.write}")
    print("OK" if not failures else f"{failures} differences")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
