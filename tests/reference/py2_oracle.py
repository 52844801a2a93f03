"""Oracle for the CMRC 2018 check, run on the official scorer's own stack (Python 2.7, NLTK 3.4.5).

Two commands, both writing plain-ASCII JSON:

* ``tokens RUNS.json OUT.json``: for each string of a JSON list (runs already lower-cased, as
  the scorer hands them to NLTK), ``[nltk.sent_tokenize(run), nltk.word_tokenize(run)]``;
* ``scores OFFICIAL.py DATA.json PREDS.json OUT.json``: per question, the F1 and EM that the
  official script's own ``calc_f1_score``/``calc_em_score`` give (the script is imported, not
  copied), ``null`` for an unanswered question.

Used by ``cmrc_official_check.py``; never imported by the package or by CI. Needs Punkt English
under NLTK_DATA:

    PYENV_VERSION=2.7.18 PYTHONPATH=.../py2site NLTK_DATA=.../nltk_data python py2_oracle.py ...
"""

import imp
import io
import json
import sys

import nltk


def _read(path):
    with io.open(path, encoding="utf-8") as handle:  # noqa: UP020 (Python 2: open takes no encoding)
        return json.load(handle)


def _write(path, payload):
    payload.update(nltk=nltk.__version__, python=sys.version.split()[0])
    with open(path, "w") as handle:
        handle.write(json.dumps(payload))  # ensure_ascii: plain bytes on Python 2


def tokens(runs_path, out_path):
    runs = _read(runs_path)
    _write(out_path, {"tokens": [[nltk.sent_tokenize(run), nltk.word_tokenize(run)] for run in runs]})


def scores(official_path, data_path, predictions_path, out_path):
    official = imp.load_source("cmrc2018_official", official_path)
    dataset, predictions = _read(data_path), _read(predictions_path)
    result = {}
    for article in dataset["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                qid = qa["id"].strip()
                if qid not in predictions:
                    result[qid] = None
                    continue
                # The script's own conversion of a prediction, then its own scoring functions.
                prediction = str(predictions[qid]).decode("utf-8")
                answers = [answer["text"] for answer in qa["answers"]]
                result[qid] = [official.calc_f1_score(answers, prediction), official.calc_em_score(answers, prediction)]
    _write(out_path, {"scores": result})


if __name__ == "__main__":
    {"tokens": tokens, "scores": scores}[sys.argv[1]](*sys.argv[2:])
