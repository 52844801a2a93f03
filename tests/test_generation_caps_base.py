"""A `--base` with a tokenizer of its own answers under the same caps as the candidate, and those
caps hold the longest reference in either tokenizer (they were counted in the candidate's only)."""

from __future__ import annotations

import json
import shutil

import pytest

from alignment_tax.evaluation.generation_caps import cap_for_references, effective_caps, longest_reference_tokens

# Chinese references of 100 characters: about 100 tokens in a tokenizer with Chinese merges,
# 300 (three bytes each) in one without any, which needs a cap above the 256 default.
REFERENCE = "中华人民共和国的首都是北京市" * 7 + "是的"


@pytest.fixture(scope="module")
def byte_base(tiny_lm_dir, tmp_path_factory):
    """The tiny model with its BPE merges removed: every UTF-8 byte of a Chinese character is a token."""
    folder = shutil.copytree(tiny_lm_dir, tmp_path_factory.mktemp("bytes") / "base")
    spec = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    spec["model"]["merges"] = []
    (folder / "tokenizer.json").write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    return folder


def _tokenizer(folder):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder))


def test_the_cap_holds_the_longest_reference_in_either_tokenizer(tiny_lm_dir, byte_base):
    class Task:
        class config:
            output_type = "generate_until"
            generation_kwargs = {"max_gen_toks": 256}

        eval_docs = [{"reference": REFERENCE}]

    candidate, base = _tokenizer(tiny_lm_dir), _tokenizer(byte_base)
    in_candidate, in_base = (longest_reference_tokens(Task.eval_docs, t) for t in (candidate, base))
    assert in_candidate + 16 <= 256 < in_base + 16  # only the base's tokens need more than the default
    alone = effective_caps({"t": Task()}, candidate, {}, ["t"])
    both = effective_caps({"t": Task()}, candidate, {}, ["t"], [base])
    assert alone["t"]["max_gen_toks"] == 256
    assert both["t"] == {
        "max_gen_toks": cap_for_references(in_base, 256),
        "source": "longest reference",
        "longest_reference_tokens": in_base,
    }
    # the order does not matter: the base as the candidate gets the same cap
    assert effective_caps({"t": Task()}, base, {}, ["t"], [candidate]) == both


def test_evaluate_caps_both_roles_by_either_tokenizer(tiny_lm_dir, byte_base, tmp_path):
    from alignment_tax.cli import main

    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"id": "1", "bo": "བོད་", "zh": REFERENCE}, ensure_ascii=False) + "\n", encoding="utf-8")
    out = tmp_path / "run"
    argv = ["evaluate", "--model", tiny_lm_dir, "--base", byte_base, "--tasks", "bo_zh_mt", "--data"]
    argv += [f"bo_zh_mt={pairs}", "--limit", "1", "--device", "cpu", "--output", out]
    assert main([str(arg) for arg in argv]) == 0
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    cap = results["config"]["generation_caps"]["bo_zh_mt"]
    assert cap["max_gen_toks"] == cap_for_references(cap["longest_reference_tokens"], 256) > 256
    assert cap["longest_reference_tokens"] == longest_reference_tokens(
        [{"reference": REFERENCE}], _tokenizer(byte_base)
    )
    base = json.loads((out.parent / "_base" / results["base"]["key"] / "results.json").read_text(encoding="utf-8"))
    assert base["config"]["generation_caps"] == results["config"]["generation_caps"]  # one cap, both roles
    assert base["config"]["generation"]["bo_zh_mt"]["max_gen_toks"] == cap["max_gen_toks"]
