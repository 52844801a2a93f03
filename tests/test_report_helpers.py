"""Synthetic `evaluate` runs for the report tests (a study: a base, an SFT and an RL run, a judge).

The files have exactly the layout and keys `alignment-tax evaluate`, `judge` and `train` write
(tests/test_report_e2e.py checks the report on real ones); the numbers are chosen so that the
comparisons have something to find: SFT gains more on translation and pays a CMRC tax, RL keeps
CMRC. Corpus BLEU/chrF and per-item scores are computed with the package's own scorers.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np

from alignment_tax.metrics.translation import corpus_bleu, corpus_chrf, sentence_bleu, sentence_chrf

INJECTION = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'
ZH = list("中国北京上海天气今天明天我们你们他们发展经济文化教育科学技术人民政府会议国家世界工作学习生活")
BO = ["བོད", "ཡིག", "རྒྱལ", "ཁབ", "སློབ", "གྲྭ", "ལོ", "རྒྱུས", "མི", "སེར", "ས", "གནས"]


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")


def _perturb(text: str, rate: float, rng: random.Random, alphabet: list[str]) -> str:
    return "".join(rng.choice(alphabet) if rng.random() < rate else char for char in text)


def _mean(rows: list[dict], name: str) -> float:
    return float(np.mean([row[name] for row in rows]))


def _task_cmrc(n: int, right: float, rng: random.Random, task_rng: random.Random) -> tuple[dict, list[dict]]:
    rows = []
    for i in range(n):
        answer = "".join(task_rng.choice(ZH) for _ in range(4))
        correct = rng.random() < right
        partial = 100.0 if correct else rng.choice([0.0, 0.0, 40.0, 66.7])
        output = answer if correct else "".join(rng.choice(ZH) for _ in range(3))
        rows.append(
            {
                "id": f"DEV_{i}_QUERY_0",
                "source": {"passage": f"文章{i}：" + answer * 3, "question": f"问题{i}？"},
                "input": f"<|im_start|>user\n问题{i}",
                "output": output,
                "reference": [answer, answer],
                "em": 100.0 if correct else 0.0,
                "f1": partial,
                "average": (partial + (100.0 if correct else 0.0)) / 2,
            }
        )
    return {name: _mean(rows, name) for name in ("em", "f1", "average")}, rows


def _task_mt(n: int, noise: float, rng: random.Random, task_rng: random.Random) -> tuple[dict, list[dict]]:
    references = ["".join(task_rng.choice(ZH) for _ in range(task_rng.randint(8, 16))) for _ in range(n)]
    sources = [" ".join(task_rng.choice(BO) for _ in range(6)) for _ in range(n)]
    outputs = [_perturb(reference, noise, rng, ZH) if noise < 1 else "" for reference in references]
    bleu, chrf = sentence_bleu(outputs, references, "zh"), sentence_chrf(outputs, references, "zh")
    rows = []
    for i in range(n):
        rows.append(
            {
                "id": f"bo_{i}",
                "source": sources[i],
                "input": f"藏文：{sources[i]}",
                "output": outputs[i],
                "reference": references[i],
                "bleu": bleu[i],
                "chrf": chrf[i],
                "lang_consistency": 1.0 if outputs[i] and rng.random() > noise / 2 else 0.0,
                "similarity": max(0.0, min(1.0, 0.95 - noise + rng.gauss(0, 0.05))),
            }
        )
    metrics = {
        "bleu": corpus_bleu(outputs, references, "zh").score,
        "chrf": corpus_chrf(outputs, references, "zh").score,
    }
    metrics |= {name: _mean(rows, name) for name in ("lang_consistency", "similarity")}
    return metrics, rows


def _task_headline(n: int, quality: float, rng: random.Random, task_rng: random.Random) -> tuple[dict, list[dict]]:
    rows = []
    for i in range(n):
        reference = "་".join(task_rng.choice(BO) for _ in range(4))
        score = max(0.0, min(100.0, 100 * quality + rng.gauss(0, 12)))
        rows.append(
            {
                "id": f"tqa_{i}",
                "source": "་".join(task_rng.choice(BO) for _ in range(30)),
                "input": "article",
                "output": reference if score > 60 else "་".join(rng.choice(BO) for _ in range(4)),
                "reference": reference,
                "rouge_1": score,
                "rouge_2": score * 0.6,
                "rouge_l": score * 0.9,
                "lang_consistency": 1.0 if rng.random() < 0.9 else 0.0,
                "similarity": 0.5 + quality / 2 + rng.gauss(0, 0.03),
            }
        )
    return {
        name: _mean(rows, name) for name in ("rouge_1", "rouge_2", "rouge_l", "lang_consistency", "similarity")
    }, rows


def _drift(folder: Path, shift: float, rng: np.random.Generator, n_texts: int = 12) -> dict:
    counts = [30 + 3 * i for i in range(n_texts)]
    text_index = np.repeat(np.arange(n_texts), counts)
    base_nll = rng.gamma(2.0, 1.2, size=text_index.size)
    kl = rng.gamma(0.6, shift, size=text_index.size)
    nll = base_nll + kl * 2 + rng.normal(0, 0.05, size=text_index.size)
    position = np.concatenate([np.arange(c) for c in counts])
    np.savez_compressed(
        folder / "drift_tokens.npz", nll=nll, base_nll=base_nll, kl=kl, text_index=text_index, position=position
    )
    _write_jsonl(folder / "drift_texts.jsonl", [{"text_index": i, "n_tokens": c} for i, c in enumerate(counts)])

    def stats(values: np.ndarray) -> dict:
        return {"mean": float(values.mean()), **{f"p{q}": float(np.percentile(values, q)) for q in (50, 90, 99)}}

    summary = {"nll": stats(nll), "base_nll": stats(base_nll), "kl": stats(kl)}
    summary["delta_nll"] = {key: summary["nll"][key] - summary["base_nll"][key] for key in summary["nll"]}
    return {
        **summary,
        "n_tokens": int(text_index.size),
        "n_texts": n_texts,
        "corpus": {"source": "cmrc2018_dev.json", "sha256": "ab" * 32, "n_texts": n_texts},
        "base": "disabled adapter",
        "files": {"tokens": "drift_tokens.npz", "texts": "drift_texts.jsonl"},
    }


def write_run(
    folder: Path,
    *,
    model: str,
    adapter: str | None,
    base: dict | None,
    quality: dict,
    seed: int,
    n_items: int,
    drift_shift: float | None = None,
    inject: bool = False,
) -> dict:
    """One run folder as `evaluate` writes it; ``quality`` sets cmrc right-rate, mt noise, headline quality."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    tasks, samples = {}, {}
    tasks["cmrc2018"], samples["cmrc2018"] = _task_cmrc(n_items, quality["cmrc"], rng, random.Random(6))
    tasks["bo_zh_mt"], samples["bo_zh_mt"] = _task_mt(n_items, quality["mt"], rng, random.Random(7))
    tasks["bo_headline"], samples["bo_headline"] = _task_headline(n_items, quality["headline"], rng, random.Random(8))
    if inject:
        samples["bo_zh_mt"][0]["output"] = INJECTION + samples["bo_zh_mt"][0]["output"]
        samples["bo_headline"][0]["output"] = INJECTION
    for task, rows in samples.items():
        _write_jsonl(folder / "samples" / f"{task}.jsonl", rows)
        for name in list(tasks[task]):
            tasks[task][f"{name}_stderr"] = 0.5
    results = {
        "model": model,
        "adapter": adapter,
        "base": base,
        "tasks": tasks,
        "tax": None,
        "signatures": {},
        "config": {"limit": n_items, "seed": 1234},
        "data": {},
        "seed": 1234,
        "started": "2026-01-01T00:00:00+00:00",
        "finished": "2026-01-01T00:10:00+00:00",
        "versions": {"alignment-tax": "0.1.0"},
        "samples": {task: f"samples/{task}.jsonl" for task in samples},
    }
    if drift_shift is not None:
        results["drift"] = _drift(folder, drift_shift, np.random.default_rng(seed))
    (folder / "results.json").write_text(json.dumps(results, ensure_ascii=False, indent=2), encoding="utf-8")
    return results


def write_train_log(folder: Path, steps: int, reward_slope: float, grpo: bool) -> None:
    rows = []
    for step in range(1, steps + 1):
        row = {"step": step, "loss": 2.0 / (1 + 0.1 * step), "learning_rate": 1e-4, "epoch": step / steps}
        if grpo:
            row |= {
                "reward": 0.3 + reward_slope * step,
                "rewards/similarity/mean": 0.5 + reward_slope * step,
                "rewards/lang_consistency/mean": min(1.0, 0.6 + 0.02 * step),
                "kl": 0.001 * step,
            }
        if step % 5 == 0:
            row |= {"drift/kl/mean": 0.01 * step, "drift/delta_nll/mean": 0.02 * step}
        rows.append(row)
    _write_jsonl(folder / "train_log.jsonl", rows)


def write_judge(root: Path, run_a: Path, run_b: Path, task: str, outcomes: list[str], name: str) -> Path:
    from alignment_tax.judge.aggregate import summarize

    records = [
        {"id": f"tqa_{i}", "orders": ["ab", "ba"], "judgements": [], "outcome": outcome, "consistent": outcome != "tie"}
        for i, outcome in enumerate(outcomes)
    ]
    path = root / f"{name}.json"
    _write_jsonl(root / f"{name}.pairs.jsonl", records)
    summary = {
        "task": task,
        "run_a": str(run_a),
        "run_b": str(run_b),
        **summarize(records, seed=1234),
        "records": str(root / f"{name}.pairs.jsonl"),
    }
    path.write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return path


def make_study(
    root: Path, n_items: int = 40, inject: bool = False, names: tuple[str, str] = ("sft", "rl")
) -> dict[str, Path]:
    """A base, an SFT run (big translation gain, CMRC tax) and an RL run (smaller gain, no tax), and a judge file."""
    runs = root / "runs"
    base_folder = runs / "_base" / "0123456789abcdef"
    write_run(
        base_folder,
        model="Qwen/Qwen3-4B",
        adapter=None,
        base=None,
        n_items=n_items,
        seed=1,
        quality={"cmrc": 0.6, "mt": 0.9, "headline": 0.15},
    )
    base = {
        "model": "Qwen/Qwen3-4B",
        "via": "disabled adapter",
        "results": str(base_folder / "results.json"),
        "key": "0123456789abcdef",
        "reused": False,
    }
    paths = {"base": base_folder}
    for name, seed, quality, shift, grpo in (
        (names[0], 2, {"cmrc": 0.35, "mt": 0.25, "headline": 0.35}, 0.08, False),
        (names[1], 3, {"cmrc": 0.58, "mt": 0.45, "headline": 0.3}, 0.03, True),
    ):
        train = root / "train" / name.replace("<", "").replace(">", "")
        write_train_log(train, 30, 0.01 if grpo else 0.0, grpo)
        (train / "adapter").mkdir(parents=True, exist_ok=True)
        paths[name] = runs / name
        write_run(
            paths[name],
            model="Qwen/Qwen3-4B",
            adapter=str(train / "adapter"),
            base=base,
            quality=quality,
            seed=seed,
            n_items=n_items,
            drift_shift=shift,
            inject=inject and grpo,
        )
    outcomes = ["a"] * (n_items // 2) + ["tie"] * (n_items // 8) + ["b"] * (n_items - n_items // 2 - n_items // 8)
    paths["judge"] = write_judge(root / "judge", paths[names[1]], paths[names[0]], "bo_headline", outcomes, "rl_vs_sft")
    return paths
