"""The paper's final reward (Eq. 4): a weighted sum of components, each logged under its own name."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from alignment_tax.errors import UserError
from alignment_tax.rewards.base import RewardCall, RewardFunction, TrlReward, finite
from alignment_tax.trainers.presets import SECTION_DEFAULTS

# The paper's weights (GRPO's preset): semantic similarity is the objective, language consistency the constraint.
LAMBDA_SIM = SECTION_DEFAULTS["reward"]["components"]["similarity"]
LAMBDA_LANG = SECTION_DEFAULTS["reward"]["components"]["language"]
COMPONENTS = ("similarity", "language", "bleu", "length")


def _mean(values: Sequence[float]) -> float:
    return float(sum(values) / len(values)) if values else 0.0


class CompositeReward(TrlReward):
    """``R = Σ weight_i · R_i``; each component's batch mean is logged as ``rewards/<name>/mean``.

    Use it as one TRL reward function (it reports each component through TRL's ``log_metric``
    and per-completion values through ``log_extra``), or hand its parts to ``GRPOTrainer``
    separately, ``reward_funcs=c.reward_funcs, args=GRPOConfig(reward_weights=c.reward_weights)``,
    which is what :mod:`alignment_tax.trainers` does: TRL then logs ``rewards/<name>/mean`` and
    ``/std`` for every component itself, and the weighted sum as ``reward``.

    >>> from alignment_tax.rewards import LanguageConsistencyReward, LengthReward
    >>> reward = CompositeReward([(LengthReward(), 1.5), (LanguageConsistencyReward("zh"), 1.0)])
    >>> logged = {}
    >>> reward(completions=["我爱北京", "ཀ་ཁ་ག་ང"], reference=["我爱北京", "我爱北京"],
    ...        log_metric=lambda name, value: logged.setdefault(name, value))
    [2.5, 1.5]
    >>> logged
    {'rewards/length/mean': 1.0, 'rewards/language/mean': 0.5}
    """

    __name__ = "reward"

    def __init__(self, components: Iterable[tuple[RewardFunction, float]] | Mapping[RewardFunction, float]):
        pairs = list(components.items()) if isinstance(components, Mapping) else list(components)
        if not pairs:
            raise UserError("a composite reward needs at least one component")
        names = [getattr(reward, "__name__", type(reward).__name__) for reward, _ in pairs]
        if len(set(names)) != len(names):
            raise UserError(f"reward component names must be distinct, got {names}")
        self.components = [reward for reward, _ in pairs]
        self.weights = [float(weight) for _, weight in pairs]
        self.names = names

    @classmethod
    def paper_default(cls, embedder: Any, tau: float, language: str, **similarity_kwargs: Any) -> CompositeReward:
        """``1.5 · R_sim + 1.0 · R_lang``, the reward of the paper's main experiments."""
        from alignment_tax.rewards.language import LanguageConsistencyReward
        from alignment_tax.rewards.similarity import SemanticSimilarityReward

        stop = similarity_kwargs.get("stop", ())
        return cls(
            [
                (SemanticSimilarityReward(embedder, tau, **similarity_kwargs), LAMBDA_SIM),
                (LanguageConsistencyReward(language, stop=stop), LAMBDA_LANG),
            ]
        )

    @property
    def reward_funcs(self) -> list[RewardFunction]:
        """The components, for ``GRPOTrainer(reward_funcs=...)``."""
        return list(self.components)

    @property
    def reward_weights(self) -> list[float]:
        """The weights, for ``GRPOConfig(reward_weights=...)``."""
        return list(self.weights)

    def component(self, name: str) -> RewardFunction:
        return self.components[self.names.index(name)]

    def rewards(self, call: RewardCall) -> list[float]:
        total = [0.0] * len(call.completions)
        for name, reward, weight in zip(self.names, self.components, self.weights):
            values = [finite(v) for v in reward(**call.arguments())]
            if call.log_metric is not None:
                call.log_metric(f"rewards/{name}/mean", _mean(values))
            if call.log_extra is not None:
                call.log_extra(name, values)
            total = [t + weight * v for t, v in zip(total, values)]
        return total

    def __repr__(self) -> str:
        parts = ", ".join(f"{w} * {r!r}" for r, w in zip(self.components, self.weights))
        return f"CompositeReward({parts})"


def build_reward(
    weights: Mapping[str, float],
    *,
    embedder: Any = None,
    tau: float | None = None,
    language: str = "zh",
    stop: Iterable[str] = (),
    embedder_batch_size: int = 64,
    length_tolerance: float = 0.5,
    length_falloff: float = 2.0,
    device: str | None = None,
    language_tolerance: Any = None,
) -> CompositeReward:
    """A :class:`CompositeReward` from ``{component: weight}`` (components with weight 0 are left out).

    Components: ``similarity`` (needs ``embedder`` and ``tau``), ``language`` (consistency with
    ``language``'s script), ``bleu`` and ``length`` (against the reference, in ``language``).
    ``language_tolerance`` relaxes the consistency rule as the metric's ``--lang-tolerance`` does
    (:func:`alignment_tax.metrics.scripts.parse_tolerance`; default: the paper's strict rule).
    """
    from alignment_tax.rewards.bleu import BleuReward
    from alignment_tax.rewards.language import LanguageConsistencyReward
    from alignment_tax.rewards.length import LengthReward
    from alignment_tax.rewards.similarity import SemanticSimilarityReward

    unknown = [name for name in weights if name not in COMPONENTS]
    if unknown:
        raise UserError(f"unknown reward component {unknown[0]!r}; valid components: {', '.join(COMPONENTS)}")
    stop = tuple(stop)
    pairs: list[tuple[RewardFunction, float]] = []
    for name, weight in weights.items():
        weight = float(weight)
        if weight == 0.0:
            continue
        if name == "similarity":
            if embedder is None:
                raise UserError("the similarity reward needs an embedder: pass --embedder PATH")
            if tau is None:
                raise UserError("the similarity reward needs tau")
            reward: RewardFunction = SemanticSimilarityReward(
                embedder, tau, batch_size=embedder_batch_size, device=device, stop=stop
            )
        elif name == "language":
            reward = LanguageConsistencyReward(language, stop=stop, tolerance=language_tolerance)
        elif name == "bleu":
            reward = BleuReward(language, stop=stop)
        else:
            reward = LengthReward(length_tolerance, length_falloff, stop=stop)
        pairs.append((reward, weight))
    if not pairs:
        raise UserError(f"every reward weight is 0; give at least one of {', '.join(COMPONENTS)} a weight")
    return CompositeReward(pairs)
