"""Rewards for GRPO with TRL: the paper's semantic reward and the ablations' alternatives.

Every reward is a plain picklable callable with TRL 1.16's reward signature
(``reward(prompts, completions, completion_ids, trainer_state, log_extra, log_metric, **columns)``,
one float per completion, never NaN) and takes plain or conversational completions::

    from alignment_tax.rewards import CompositeReward
    reward = CompositeReward.paper_default("runs/embedder/embedder", tau=0.42, language="zh")
    GRPOTrainer(..., reward_funcs=reward.reward_funcs, args=GRPOConfig(reward_weights=reward.reward_weights))

* :class:`SemanticSimilarityReward`: shaped cosine to the reference (paper Eq. 1–2);
* :class:`LanguageConsistencyReward`: 1 when the output stays in the target script (Eq. 3);
* :class:`BleuReward`, :class:`LengthReward`: the ablation's surface-form rewards (§4.5);
* :class:`CompositeReward`: the weighted sum (Eq. 4; λsim = 1.5, λlang = 1.0), each part logged.
"""

from alignment_tax.rewards.base import REFERENCE_COLUMN, RewardFunction, completion_text, finite
from alignment_tax.rewards.bleu import BleuReward
from alignment_tax.rewards.composite import (
    COMPONENTS,
    LAMBDA_LANG,
    LAMBDA_SIM,
    CompositeReward,
    build_reward,
)
from alignment_tax.rewards.language import LanguageConsistencyReward
from alignment_tax.rewards.length import LengthReward, length_score, length_units
from alignment_tax.rewards.similarity import SemanticSimilarityReward, check_tau, shape_similarity

__all__ = [
    "COMPONENTS",
    "LAMBDA_LANG",
    "LAMBDA_SIM",
    "REFERENCE_COLUMN",
    "BleuReward",
    "CompositeReward",
    "LanguageConsistencyReward",
    "LengthReward",
    "RewardFunction",
    "SemanticSimilarityReward",
    "build_reward",
    "check_tau",
    "completion_text",
    "finite",
    "length_score",
    "length_units",
    "shape_similarity",
]
