"""The four tasks end to end through lm-eval's simple_evaluate with the tiny Qwen3 model."""

from statistics import fmean

import pytest

from alignment_tax.metrics.translation import corpus_bleu, corpus_chrf
from alignment_tax.tasks import OUR_TASKS, scoring
from alignment_tax.tasks.prompts import render_prompt
from alignment_tax.tasks.registry import task_manager

pytestmark = pytest.mark.slow

LIMIT = 3
MEAN_METRICS = {
    "cmrc2018": ("em", "f1", "average"),
    "bo_zh_mt": ("lang_consistency",),
    "zh_bo_mt": ("lang_consistency",),
    "bo_headline": ("rouge_1", "rouge_2", "rouge_l", "lang_consistency"),
}
CORPUS_METRICS = {"bo_zh_mt": "zh", "zh_bo_mt": "bo"}  # task -> target language of bleu/chrf
INSTRUCTIONS = {
    "cmrc2018": "请阅读下面的文章并回答问题。答案必须是从文章中原样摘录的最短连续片段",
    "bo_zh_mt": "请把下面的藏文翻译成简体中文。只输出中文译文",
    "zh_bo_mt": "请把下面的中文翻译成藏文。只输出藏文译文",
    "bo_headline": "请为下面这篇藏文文章写一个藏文标题。",
}


@pytest.fixture(scope="module")
def tokenizer(tiny_lm_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_lm_dir)


@pytest.fixture(scope="module")
def evaluation(tiny_lm_dir, shared_data, tokenizer):
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from transformers import AutoModelForCausalLM

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setenv("HF_DATASETS_OFFLINE", "1")
        model = AutoModelForCausalLM.from_pretrained(tiny_lm_dir).eval()
        lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=4, device="cpu")
        # The random model's greedy pick is a newline, which the tasks' "\n\n" stop ends at
        # once; suppressing newlines and special tokens makes the predictions real text.
        suppress = [i for i in range(len(tokenizer)) if "\n" in tokenizer.decode([i])]
        suppress += tokenizer.all_special_ids
        return simple_evaluate(
            model=lm,
            tasks=list(OUR_TASKS),
            task_manager=task_manager({"data_dir": str(shared_data)}, include_defaults=False),
            apply_chat_template=True,
            limit=LIMIT,
            log_samples=True,
            bootstrap_iters=0,
            gen_kwargs={"max_gen_toks": 8, "suppress_tokens": sorted(set(suppress))},
        )


def test_every_task_reports_its_metrics(evaluation):
    for task in OUR_TASKS:
        metrics = set(MEAN_METRICS[task]) | ({"bleu", "chrf"} if task in CORPUS_METRICS else set())
        result = evaluation["results"][task]
        assert {key.split(",")[0] for key in result if "," in key} == metrics | {f"{m}_stderr" for m in metrics}
        for metric in metrics:
            assert isinstance(result[f"{metric},none"], float)
            assert result[f"{metric}_stderr,none"] == "N/A"  # bootstrap_iters=0
        assert evaluation["higher_is_better"][task] == dict.fromkeys(metrics, True)
        assert len(evaluation["samples"][task]) == LIMIT


def test_samples_carry_the_docs(evaluation):
    for task in OUR_TASKS:
        for sample in evaluation["samples"][task]:
            doc = sample["doc"]
            assert {"id", "source", "reference"} <= set(doc)
            assert isinstance(doc["id"], str) and doc["id"]
            if task == "cmrc2018":
                assert set(doc["source"]) == {"passage", "question"}
                assert isinstance(doc["reference"], list) and all(isinstance(a, str) for a in doc["reference"])
                assert sample["target"] == doc["reference"]
            else:
                assert isinstance(doc["source"], str) and isinstance(doc["reference"], str)
                assert sample["target"] == doc["reference"]
    mt_doc = evaluation["samples"]["zh_bo_mt"][0]["doc"]
    assert (mt_doc["source_lang"], mt_doc["target_lang"]) == ("zh", "bo")


def test_request_is_the_rendered_prompt_inside_the_chat_template(evaluation, tokenizer):
    for task in OUR_TASKS:
        for sample in evaluation["samples"][task]:
            prompt, gen_kwargs = sample["arguments"][0]
            user_turn = render_prompt(task, sample["doc"])
            assert prompt.startswith("<|im_start|>user\n") and INSTRUCTIONS[task] in prompt
            expected = tokenizer.apply_chat_template(
                [{"role": "user", "content": user_turn}], tokenize=False, add_generation_prompt=True
            )
            assert prompt == expected
            # the YAML's greedy settings survive the test's max_gen_toks override
            assert gen_kwargs["do_sample"] is False and gen_kwargs["temperature"] == 0.0
            assert gen_kwargs["until"] == ["\n\n"] and gen_kwargs["max_gen_toks"] == 8


def test_mean_metrics_are_the_mean_of_the_per_sample_values(evaluation):
    for task, metrics in MEAN_METRICS.items():
        samples = evaluation["samples"][task]
        for metric in metrics:
            assert evaluation["results"][task][f"{metric},none"] == pytest.approx(fmean(s[metric] for s in samples))


def test_corpus_metrics_score_the_logged_prediction_reference_pairs(evaluation):
    for task, lang in CORPUS_METRICS.items():
        samples = evaluation["samples"][task]
        predictions = [scoring.clean_prediction(s["filtered_resps"][0]) for s in samples]
        references = [s["doc"]["reference"] for s in samples]
        assert [tuple(s["bleu"]) for s in samples] == list(zip(predictions, references))
        result = evaluation["results"][task]
        assert result["bleu,none"] == pytest.approx(corpus_bleu(predictions, references, lang).score)
        assert result["chrf,none"] == pytest.approx(corpus_chrf(predictions, references, lang).score)
    # the tiny model writes Chinese characters, so Chinese-target scores are not all trivially 0
    assert evaluation["results"]["bo_zh_mt"]["chrf,none"] > 0
