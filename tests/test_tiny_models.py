"""The locally built tiny models load through the ordinary paths and behave like real ones."""

import json

import numpy as np
import pytest
import torch

from alignment_tax.data.normalize import normalize_text
from alignment_tax.errors import UserError
from alignment_tax.models.tiny import MANIFEST_NAME, build_tiny_model


@pytest.fixture(scope="module")
def lm_tokenizer(tiny_lm_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_lm_dir)


@pytest.fixture(scope="module")
def lm(tiny_lm_dir):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_lm_dir).eval()


@pytest.fixture(scope="module")
def embedder(tiny_embedder_dir):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(tiny_embedder_dir), device="cpu")


def test_tiny_lm_loads_as_float32_qwen3_of_about_a_third_of_a_million_parameters(lm, tiny_lm_dir):
    assert type(lm).__name__ == "Qwen3ForCausalLM"
    assert all(p.dtype == torch.float32 for p in lm.parameters())
    assert 200_000 <= lm.num_parameters() <= 450_000
    manifest = json.loads((tiny_lm_dir / MANIFEST_NAME).read_text(encoding="utf-8"))
    assert manifest["kind"] == "lm" and manifest["size"] == "tiny" and manifest["seed"] == 0
    assert manifest["parameters"] == lm.num_parameters()
    assert manifest["alignment_tax_version"]


def test_special_tokens_agree_between_tokenizer_config_and_generation_config(lm_tokenizer, lm):
    assert lm_tokenizer.eos_token == "<|im_end|>"
    assert lm_tokenizer.pad_token == "<|endoftext|>"
    assert lm_tokenizer.bos_token is None
    assert "<|im_start|>" in lm_tokenizer.all_special_tokens
    assert lm_tokenizer.model_max_length == 2048
    for config in (lm.config, lm.generation_config):
        assert config.eos_token_id == lm_tokenizer.eos_token_id
        assert config.pad_token_id == lm_tokenizer.pad_token_id
    assert lm.config.vocab_size == len(lm_tokenizer)
    # No BOS is added and no segment ids are returned (Qwen3's forward takes none).
    encoded = lm_tokenizer("ཀ་ཁ་ག")
    assert set(encoded) == {"input_ids", "attention_mask"}
    assert encoded["input_ids"] == lm_tokenizer.encode("ཀ་ཁ་ག", add_special_tokens=False)


def test_chat_template_renders_chatml_with_generation_prompt(lm_tokenizer):
    messages = [{"role": "system", "content": "你是助手"}, {"role": "user", "content": "བཀྲ་ཤིས།"}]
    rendered = lm_tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert rendered == (
        "<|im_start|>system\n你是助手<|im_end|>\n<|im_start|>user\nབཀྲ་ཤིས།<|im_end|>\n<|im_start|>assistant\n"
    )
    without = lm_tokenizer.apply_chat_template(messages[1:], tokenize=False)
    assert without == "<|im_start|>user\nབཀྲ་ཤིས།<|im_end|>\n"


def test_assistant_token_mask_covers_exactly_the_reply_and_its_end_token(lm_tokenizer):
    messages = [
        {"role": "user", "content": "你好"},
        {"role": "assistant", "content": "བཀྲ་ཤིས་བདེ་ལེགས།"},
        {"role": "user", "content": "再见"},
        {"role": "assistant", "content": "Bye!"},
    ]
    out = lm_tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    ids, mask = out["input_ids"], out["assistant_masks"]
    assert len(mask) == len(ids) and 0 < sum(mask) < len(ids)
    masked = lm_tokenizer.decode([i for i, m in zip(ids, mask) if m])
    assert masked == "བཀྲ་ཤིས་བདེ་ལེགས།<|im_end|>Bye!<|im_end|>"


def test_greedy_generate_appends_new_tokens_deterministically(lm, lm_tokenizer):
    prompt = lm_tokenizer.apply_chat_template(
        [{"role": "user", "content": "讲个故事"}], add_generation_prompt=True, return_dict=True, return_tensors="pt"
    )
    first = lm.generate(**prompt, max_new_tokens=4, min_new_tokens=4, do_sample=False)
    again = lm.generate(**prompt, max_new_tokens=4, min_new_tokens=4, do_sample=False)
    assert first.shape == (1, prompt["input_ids"].shape[1] + 4)
    assert torch.equal(first, again)
    assert torch.equal(first[:, : prompt["input_ids"].shape[1]], prompt["input_ids"])


def test_same_seed_gives_identical_bytes_and_another_seed_other_weights(tmp_path):
    before = torch.random.get_rng_state()
    a = build_tiny_model(tmp_path / "a", kind="lm", size="tiny", seed=7)
    b = build_tiny_model(tmp_path / "b", kind="lm", size="tiny", seed=7)
    c = build_tiny_model(tmp_path / "c", kind="lm", size="tiny", seed=8)
    assert torch.equal(torch.random.get_rng_state(), before), "the builder must not move the global torch RNG"
    weights = [(d / "model.safetensors").read_bytes() for d in (a, b, c)]
    assert weights[0] == weights[1]
    assert weights[0] != weights[2]
    tokenizers = {(d / "tokenizer.json").read_bytes() for d in (a, b, c)}
    assert len(tokenizers) == 1, "the tokenizer must not depend on the seed"


def _shared_texts(shared_data):
    texts = []
    with open(shared_data / "bo_zh_mt" / "cmilbench_bo_zh.jsonl", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            texts += [normalize_text(row["bo"]), normalize_text(row["zh"])]
    for name in ("cmrc2018_dev.json", "cmrc2018_trial.json"):
        data = json.loads((shared_data / "cmrc2018" / name).read_text(encoding="utf-8"))
        texts += [normalize_text(p["context"]) for article in data["data"] for p in article["paragraphs"]]
    return texts


def test_tibetan_and_chinese_round_trip_exactly(lm_tokenizer, shared_data):
    texts = _shared_texts(shared_data)
    assert len(texts) > 1_900
    broken = [t for t in texts if lm_tokenizer.decode(lm_tokenizer.encode(t, add_special_tokens=False)) != t]
    assert broken == []


@pytest.mark.parametrize(
    "text",
    [
        "Hello , world . Don't  drop   spaces\tor tabs\n",
        "😀👍🏽 👨‍👩‍👧 ✅",
        "ئۇيغۇرچە تېكىست، سىناق.",
        "Ελληνικά, Кириллица, हिन्दी, 한국어",
        " leading and trailing spaces ",
    ],
)
def test_scripts_the_corpus_never_saw_round_trip_too(lm_tokenizer, text):
    text = normalize_text(text)
    ids = lm_tokenizer.encode(text, add_special_tokens=False)
    assert lm_tokenizer.decode(ids) == text


def test_embedder_encodes_tibetan_and_chinese_batches_with_padding(embedder):
    assert embedder.get_embedding_dimension() == 64
    assert embedder.max_seq_length == 256
    texts = ["ཀ", "བཀྲ་ཤིས་བདེ་ལེགས། ཁྱེད་རང་སྐུ་གཟུགས་བདེ་པོ་ཡིན་པས།", "你好", "今天天气很好，我们去公园散步吧。"]
    batch = embedder.encode(texts, batch_size=4)
    assert batch.shape == (4, 64) and np.isfinite(batch).all()
    # Padding must not leak into mean pooling: each text alone gives the same vector.
    alone = np.stack([embedder.encode([t])[0] for t in texts])
    np.testing.assert_allclose(batch, alone, atol=1e-5)
    # Longer than max_seq_length is truncated, not an error.
    assert embedder.encode(["ཀ་" * 1_000]).shape == (1, 64)


def test_identical_texts_have_cosine_one_and_different_texts_differ(embedder):
    vectors = embedder.encode(["你好，世界", "你好，世界", "བཀྲ་ཤིས་བདེ་ལེགས།"], convert_to_tensor=True)
    similarity = embedder.similarity(vectors, vectors)
    assert similarity[0, 1].item() == pytest.approx(1.0, abs=1e-5)
    assert similarity[0, 2].item() < 0.9999


def test_embedder_shares_the_language_models_tokenizer(embedder, lm_tokenizer, tiny_embedder_dir, tiny_lm_dir):
    assert (tiny_embedder_dir / "tokenizer.json").read_bytes() == (tiny_lm_dir / "tokenizer.json").read_bytes()
    text = "བོད་ཡིག 中文 mixed"
    assert embedder.tokenizer.encode(text, add_special_tokens=False) == lm_tokenizer.encode(
        text, add_special_tokens=False
    )
    manifest = json.loads((tiny_embedder_dir / MANIFEST_NAME).read_text(encoding="utf-8"))
    assert manifest["kind"] == "embedder" and 200_000 <= manifest["parameters"] <= 450_000


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [({"kind": "classifier"}, ["'classifier'", "lm", "embedder"]), ({"size": "huge"}, ["'huge'", "tiny", "small"])],
)
def test_unknown_kind_or_size_is_a_user_error_listing_the_choices(tmp_path, kwargs, words):
    with pytest.raises(UserError) as caught:
        build_tiny_model(tmp_path / "out", **kwargs)
    assert all(word in str(caught.value) for word in words)
    assert not (tmp_path / "out").exists()


def test_rebuilding_as_another_kind_removes_only_the_previous_builds_files(tmp_path):
    out = tmp_path / "model"
    out.mkdir()
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    build_tiny_model(out, kind="embedder")
    assert (out / "modules.json").exists()
    build_tiny_model(out, kind="lm")
    assert not (out / "modules.json").exists() and not (out / "1_Pooling").exists()
    assert (out / "notes.txt").read_text(encoding="utf-8") == "mine"
    assert json.loads((out / MANIFEST_NAME).read_text(encoding="utf-8"))["kind"] == "lm"


@pytest.mark.slow
def test_small_lm_has_25_to_30_million_parameters(tmp_path):
    from transformers import AutoConfig

    out = build_tiny_model(tmp_path / "small", kind="lm", size="small", seed=0)
    manifest = json.loads((out / MANIFEST_NAME).read_text(encoding="utf-8"))
    assert 25_000_000 <= manifest["parameters"] <= 30_000_000
    config = AutoConfig.from_pretrained(out)
    assert (config.hidden_size, config.num_hidden_layers) == (512, 8)
