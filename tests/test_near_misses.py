"""Small things a user notices: an empty folder after an early error, a message glued to a progress bar,
an adapter that records its base relative to where it was made, a number the report silently cannot show."""

import argparse
import json
import shutil

import pytest
from test_report_helpers import make_study

from alignment_tax import cli
from alignment_tax.errors import UserError


def test_an_early_training_error_leaves_no_empty_output_folder(tmp_path, capsys):
    output = tmp_path / "runs" / "sft"
    argv = ["train", "--method", "sft", "--model", str(tmp_path / "m"), "--train-data", str(tmp_path / "no.jsonl")]
    assert cli.main([*argv, "--output", str(output)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not output.exists()
    output.mkdir(parents=True)  # a folder the user made is theirs: it stays
    assert cli.main([*argv, "--output", str(output)]) == 2
    assert output.is_dir()


@pytest.mark.parametrize("stop", [UserError("no such thing"), KeyboardInterrupt()])
def test_the_last_line_starts_a_line_of_its_own_after_an_unfinished_bar(monkeypatch, capsys, stop):
    import sys

    from tqdm import tqdm

    def handler(args):
        bar = tqdm(total=10, desc="train sft", file=sys.stderr)
        bar.update(4)  # stopped here, its line not ended
        raise stop

    parser = argparse.ArgumentParser()
    parser.set_defaults(handler=handler, command="train")
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    assert cli.main([]) in (2, 130)
    last = capsys.readouterr().err.splitlines()[-1]
    assert last in ("alignment-tax: error: no such thing", "alignment-tax: interrupted"), repr(last)


def test_an_adapter_records_its_base_as_an_absolute_path(tiny_lm_dir, tmp_path, monkeypatch):
    shutil.copytree(tiny_lm_dir, tmp_path / "base")
    monkeypatch.chdir(tmp_path)
    argv = ["make-tiny-model", "adapter", "--kind", "adapter", "--base-model", "base"]
    assert cli.main(argv) == 0
    config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text(encoding="utf-8"))
    assert config["base_model_name_or_path"] == str((tmp_path / "base").resolve())


@pytest.mark.parametrize(("value", "said"), [(float("nan"), "is NaN"), ("61.2", "is the string '61.2'")])
def test_a_metric_the_report_cannot_show_is_named_in_one_line(tmp_path, capsys, value, said):
    study = make_study(tmp_path, n_items=8)
    results_file = study["sft"] / "results.json"
    results = json.loads(results_file.read_text(encoding="utf-8"))
    results["tasks"]["cmrc2018"]["f1"] = value
    results_file.write_text(json.dumps(results), encoding="utf-8")  # json writes NaN as NaN
    assert cli.main(["report", str(study["sft"]), str(study["rl"]), "--out", str(tmp_path / "r.md")]) == 0
    warned = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert warned == [
        f"alignment-tax report: warning: {results_file}: tasks.cmrc2018.f1 {said}, not a number; "
        "the report shows — for it"
    ]
