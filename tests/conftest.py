"""Session fixtures: the real data beside the project and tiny models built once per session."""

import os
from pathlib import Path

import pytest

# Fixtures shared by the reliability tests (`where`, `full_disk`), offered to every module.
pytest_plugins = ["reliability_helpers"]

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("ALIGNMENT_TAX_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``: real CMRC 2018, Tibetan–Chinese pairs and Tibetan passages."""
    if not (SHARED_DATA / "cmrc2018" / "cmrc2018_dev.json").exists():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_lm_dir(tmp_path_factory) -> Path:
    from alignment_tax.models.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-lm"), kind="lm", size="tiny", seed=0)


@pytest.fixture(scope="session")
def tiny_embedder_dir(tmp_path_factory) -> Path:
    from alignment_tax.models.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-embedder"), kind="embedder", size="tiny", seed=0)


@pytest.fixture(scope="session")
def mismatched_base(tmp_path_factory) -> Path:
    """A model whose shapes the tiny adapter does not fit."""
    from alignment_tax.models.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("small"), size="small")


@pytest.fixture(scope="session")
def tiny_adapter_dir(tiny_lm_dir, tmp_path_factory) -> Path:
    from alignment_tax.models.tiny_adapter import build_tiny_adapter

    return build_tiny_adapter(tiny_lm_dir, tmp_path_factory.mktemp("tiny-adapter"), rank=4, seed=0)


# Drift's tests (test_drift, test_drift_packing): six CMRC dev passages, and the tiny model with
# its adapter (the candidate) beside a separately loaded copy of the base.
@pytest.fixture(scope="module")
def passages(shared_data):
    from alignment_tax.data import load_corpus

    return load_corpus(shared_data / "cmrc2018" / "cmrc2018_dev.json", dedupe=True)[:6]


@pytest.fixture(scope="module")
def models(tiny_lm_dir, tiny_adapter_dir):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_lm_dir)
    candidate = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_lm_dir), tiny_adapter_dir).eval()
    base = AutoModelForCausalLM.from_pretrained(tiny_lm_dir).eval()
    return tokenizer, candidate, base


@pytest.fixture
def kill_after_two_batches(models, monkeypatch):
    """Called, makes the candidate's backbone raise KeyboardInterrupt in its third drift batch (two
    forwards, candidate then base, per batch); ``monkeypatch.undo()`` puts it back."""
    backbone = models[1].get_base_model().model
    forward, calls = backbone.forward, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) > 4:
            raise KeyboardInterrupt
        return forward(*args, **kwargs)

    return lambda: monkeypatch.setattr(backbone, "forward", interrupted)
