"""Rewards: values checked by hand, TRL's calling convention, caching, pickling, never NaN."""

import doctest
import math
import pickle

import numpy as np
import pytest

from alignment_tax.errors import UserError
from alignment_tax.rewards import (
    LAMBDA_LANG,
    LAMBDA_SIM,
    BleuReward,
    CompositeReward,
    LanguageConsistencyReward,
    LengthReward,
    SemanticSimilarityReward,
    build_reward,
    completion_text,
    shape_similarity,
)

TIBETAN = "བཀྲ་ཤིས་བདེ་ལེགས། ང་ཚོ་སློབ་གྲྭར་འགྲོ།"
CHINESE = "我们去学校。"


class ToyEncoder:
    """Deterministic 2-d embeddings: texts with 猫 point one way, others at a known angle."""

    def __init__(self, other=(0.6, 0.8)):
        self.other = other
        self.calls = []

    def encode(self, texts, **kwargs):
        self.calls.append(list(texts))
        return np.array([[1.0, 0.0] if "猫" in t else list(self.other) for t in texts])


class NanEncoder:
    def encode(self, texts, **kwargs):
        return np.full((len(texts), 3), np.nan)


def conversational(text):
    return [{"role": "assistant", "content": text}]


def test_module_examples_hold():
    import alignment_tax.rewards.base as base
    import alignment_tax.rewards.bleu as bleu
    import alignment_tax.rewards.composite as composite
    import alignment_tax.rewards.language as language
    import alignment_tax.rewards.length as length
    import alignment_tax.rewards.similarity as similarity

    for module in (base, bleu, composite, language, length, similarity):
        failed, attempted = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert attempted > 0 and failed == 0, module.__name__


def test_shaping_by_hand():
    assert shape_similarity(1.0, 0.5) == 1.0
    assert shape_similarity(0.5, 0.5) == 0.0  # s ≤ τ
    assert shape_similarity(0.3, 0.5) == 0.0
    assert shape_similarity(0.75, 0.5) == pytest.approx(0.5)
    assert shape_similarity(-0.2, -0.5) == pytest.approx(0.3 / 1.5)


def test_similarity_values_by_hand():
    reward = SemanticSimilarityReward(ToyEncoder(other=(0.8, 0.6)), tau=0.6)
    scores = reward(
        prompts=[[{"role": "user", "content": "x"}]] * 4,
        completions=[conversational("一只猫"), "一条狗", "", conversational("   ")],
        reference=["猫在睡觉"] * 4,
    )
    # 猫 vs 猫: cos 1 → 1; 狗 vs 猫: cos 0.8 → (0.8 − 0.6)/(1 − 0.6) = 0.5; empty → 0.
    assert scores == pytest.approx([1.0, 0.5, 0.0, 0.0])
    below = SemanticSimilarityReward(ToyEncoder(other=(0.6, 0.8)), tau=0.6)
    assert below(completions=["一条狗"], reference=["猫"]) == [0.0]  # cos 0.6 ≤ τ


def test_identical_completion_scores_one_with_a_real_embedder(tiny_embedder_dir):
    reward = SemanticSimilarityReward(str(tiny_embedder_dir), tau=0.3)
    references = [CHINESE, TIBETAN]
    scores = reward(completions=[conversational(CHINESE), TIBETAN + "\n\n解释"], reference=references)
    assert scores[0] == 1.0 and 0.0 <= scores[1] < 1.0
    cut = SemanticSimilarityReward(str(tiny_embedder_dir), tau=0.3, stop=["\n\n"])
    assert cut(completions=[TIBETAN + "\n\n解释"], reference=[TIBETAN]) == [1.0]
    # A paraphrase-like text is scored by the encoder: Eq. 2 applied by hand to the cosine that
    # sentence-transformers itself gives.
    other = reward(completions=["我们去图书馆。"], reference=[CHINESE])[0]
    from sentence_transformers import SentenceTransformer

    vectors = SentenceTransformer(str(tiny_embedder_dir), device="cpu").encode(
        ["我们去图书馆。", CHINESE], normalize_embeddings=True
    )
    cosine = float(np.dot(vectors[0], vectors[1]))
    assert other == pytest.approx(max(0.0, (cosine - 0.3) / (1 - 0.3)), abs=1e-5)


def test_never_nan():
    reward = SemanticSimilarityReward(NanEncoder(), tau=0.0)
    scores = reward(completions=["a", "b", ""], reference=["c", "d", "e"])
    assert scores == [0.0, 0.0, 0.0]
    assert all(not math.isnan(s) for s in scores)
    composite = CompositeReward([(reward, LAMBDA_SIM), (LanguageConsistencyReward("zh"), LAMBDA_LANG)])
    assert composite(completions=["", None], reference=["x", "y"]) == [0.0, 0.0]


def test_completions_are_encoded_in_one_call_and_references_cached():
    encoder = ToyEncoder()
    reward = SemanticSimilarityReward(encoder, tau=0.0)
    completions = [f"候选{i}" for i in range(8)]
    references = ["猫甲"] * 4 + ["猫乙"] * 4  # 2 prompts × 4 generations
    reward(completions=completions, reference=references)
    assert len(encoder.calls) == 1  # completions and the 2 new references together
    assert sorted(encoder.calls[0][-2:]) == ["猫乙", "猫甲"] and len(encoder.calls[0]) == 10
    assert (reward.cache_misses, reward.cache_hits, reward.cache_size) == (2, 0, 2)
    reward(completions=completions, reference=references)
    assert len(encoder.calls) == 2 and len(encoder.calls[1]) == 8  # completions only
    assert (reward.cache_misses, reward.cache_hits) == (2, 2)
    reward.clear_cache()
    assert reward.precompute(["猫甲", "猫甲", "猫丙"]) == 2 and reward.cache_size == 2


def test_similarity_pickles_by_path_and_reloads(tiny_embedder_dir):
    reward = SemanticSimilarityReward(str(tiny_embedder_dir), tau=0.2)
    before = reward(completions=["我们去图书馆。"], reference=[CHINESE])
    clone = pickle.loads(pickle.dumps(reward))
    assert clone._model is None and clone.cache_size == 0 and clone.tau == 0.2
    assert clone(completions=["我们去图书馆。"], reference=[CHINESE]) == pytest.approx(before)
    assert clone.__name__ == "similarity"


def test_other_rewards_pickle_and_keep_their_names():
    rewards = [
        LanguageConsistencyReward("bo"),
        BleuReward("zh"),
        LengthReward(),
        CompositeReward([(LanguageConsistencyReward("zh"), 1.0), (LengthReward(), 0.5)]),
    ]
    for reward in rewards:
        clone = pickle.loads(pickle.dumps(reward))
        assert clone(completions=[CHINESE], reference=[CHINESE]) == reward(completions=[CHINESE], reference=[CHINESE])
    assert [r.__name__ for r in rewards] == ["language", "bleu", "length", "reward"]


def test_language_consistency_by_hand():
    reward = LanguageConsistencyReward("bo")
    assert reward(completions=[TIBETAN, CHINESE, TIBETAN + CHINESE, "", "123 ！"]) == [1.0, 0.0, 0.0, 0.0, 0.0]
    assert LanguageConsistencyReward("zh")(completions=[conversational(CHINESE)]) == [1.0]
    with pytest.raises(UserError, match="unknown language code"):
        LanguageConsistencyReward("xx")


def test_bleu_and_length_by_hand():
    bleu = BleuReward("zh")
    assert bleu(completions=[CHINESE, "", "完全不同的句子"], reference=[CHINESE] * 3)[:2] == [1.0, 0.0]
    assert BleuReward("bo")(completions=[TIBETAN], reference=[TIBETAN]) == [1.0]
    length = LengthReward(tolerance=0.5, falloff=2.0)
    # 我们去学校 = 5 units; 10 units is 2× → d = ln 2, score 1 − (ln 2 − ln 1.5)/ln 2 ≈ 0.585.
    scores = length(completions=["我们去学校", "我们去学校我们去学校", "我", ""], reference=[CHINESE] * 4)
    assert scores[0] == 1.0 and scores[1] == pytest.approx(1 - (math.log(2) - math.log(1.5)) / math.log(2))
    assert scores[2:] == [0.0, 0.0]


def test_composite_is_the_weighted_sum_and_logs_each_component():
    encoder = ToyEncoder(other=(0.8, 0.6))
    reward = CompositeReward.paper_default(encoder, tau=0.6, language="zh")
    assert reward.names == ["similarity", "language"] and reward.weights == [1.5, 1.0]
    metrics, extras = {}, {}
    scores = reward(
        completions=[conversational("猫"), conversational("狗"), conversational("ཀ་ཁ")],
        reference=["猫"] * 3,
        log_metric=lambda name, value: metrics.__setitem__(name, value),
        log_extra=lambda name, values: extras.__setitem__(name, values),
    )
    # 猫: 1.5·1 + 1 = 2.5; 狗: 1.5·0.5 + 1 = 1.75; Tibetan for a Chinese target: 1.5·0.5 + 0 = 0.75.
    assert scores == pytest.approx([2.5, 1.75, 0.75])
    assert metrics == pytest.approx({"rewards/similarity/mean": 2.0 / 3, "rewards/language/mean": 2.0 / 3})
    assert set(extras) == {"similarity", "language"}
    assert reward.reward_funcs == reward.components and reward.reward_weights == [1.5, 1.0]


def test_bad_reward_settings_are_user_errors():
    with pytest.raises(UserError, match="valid components: similarity, language, bleu, length"):
        build_reward({"semantic": 1.0})
    with pytest.raises(UserError, match="--embedder"):
        build_reward({"similarity": 1.5, "language": 1.0}, tau=0.5)
    with pytest.raises(UserError, match="every reward weight is 0"):
        build_reward({"bleu": 0})
    with pytest.raises(UserError, match="tau must be in"):
        SemanticSimilarityReward(ToyEncoder(), tau=1.0)
    with pytest.raises(UserError, match="'reference' column"):
        BleuReward("zh")(completions=["x"], answer=["y"])


def test_completion_text_handles_every_shape():
    assert (
        completion_text([{"role": "assistant", "content": [{"type": "text", "text": "甲"}, {"type": "image"}]}]) == "甲"
    )
    assert completion_text([{"role": "assistant", "content": None}]) == ""
    assert completion_text({"content": " 乙 "}) == "乙"
    assert completion_text("ཀ\u0f0cཁ") == "ཀ\u0f0bཁ"  # normalised like every other text
