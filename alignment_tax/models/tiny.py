"""Tiny Qwen3 language models and BERT sentence embedders, built locally with no network.

Tests, demos and CPU benchmarks need real checkpoints that load through the ordinary
``from_pretrained`` paths, but the hub is out of reach and real Tibetan-adapted models are
gigabytes. :func:`build_tiny_model` writes one in well under a second: a byte-level BPE
tokenizer trained on the Chinese and Tibetan text shipped in ``tiny_corpus/`` (see its
``ATTRIBUTION.md``) and randomly initialised weights drawn from ``seed``.

The tokenizer depends on nothing but the shipped corpus, so every kind, size and seed shares
the same ``tokenizer.json``: an embedder and a language model can be paired freely.

Building into a directory that already holds files overwrites the files of the same name and
leaves others alone, except that the files a previous tiny build recorded in its
``alignment_tax_tiny.json`` are removed first, so rebuilding a directory as another kind
leaves no stale modules behind.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
from pathlib import Path

from alignment_tax import __version__
from alignment_tax.data.normalize import normalize_text
from alignment_tax.errors import UserError
from alignment_tax.provenance import TINY_MANIFEST

KINDS = ("lm", "embedder")
SIZES = ("tiny", "mini", "small")
CORPUS_DIR = Path(__file__).with_name("tiny_corpus")
CORPUS_FILES = ("zh.txt", "bo.txt")
MANIFEST_NAME = TINY_MANIFEST

PAD_TOKEN, CHAT_START, EOS_TOKEN = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
SPECIAL_TOKENS = [PAD_TOKEN, CHAT_START, EOS_TOKEN]
# 4,000 tokens put the tiny LM at ~0.33M parameters, most of them in the tied embedding.
VOCAB_SIZE = 4000
LM_MAX_LENGTH = 2048
EMBEDDER_MAX_LENGTH = 256

# Qwen-style ChatML. The ``generation`` block marks the assistant's reply (its closing
# <|im_end|> included, so a model learns to stop) for ``return_assistant_tokens_mask``,
# which TRL's assistant-only loss relies on.
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message['role'] == 'assistant' %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- generation %}{{- message['content'] + '<|im_end|>' }}{%- endgeneration %}"
    "{{- '\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

LM_SHAPES = {
    "tiny": dict(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
    ),
    # mini: the shape of the pretrained demo base (models/pretrain.py), ≈1.3M parameters.
    "mini": dict(
        hidden_size=128,
        intermediate_size=384,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=32,
    ),
    "small": dict(
        hidden_size=512,
        intermediate_size=1536,
        num_hidden_layers=8,
        num_attention_heads=8,
        num_key_value_heads=4,
        head_dim=64,
    ),
}
EMBEDDER_SHAPES = {
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4),
    "mini": dict(hidden_size=128, intermediate_size=384, num_hidden_layers=4, num_attention_heads=4),
    "small": dict(hidden_size=384, intermediate_size=1536, num_hidden_layers=6, num_attention_heads=6),
}


def build_tiny_model(
    out_dir: str | os.PathLike,
    kind: str = "lm",
    size: str = "tiny",
    seed: int = 0,
    pretrained: bool = False,
    pretrain=None,
    log=print,
    shape: str | None = None,
    layers: int | None = None,
    dtype: str = "float32",
    device: str | None = None,
) -> Path:
    """Build a randomly initialised ``kind`` model of ``size`` into ``out_dir`` and return it.

    ``kind="lm"`` writes a Qwen3 causal LM (``AutoModelForCausalLM.from_pretrained``);
    ``kind="embedder"`` a sentence-transformers model (``SentenceTransformer(out_dir)``).
    The same ``seed`` gives byte-identical weights; the tokenizer never depends on it.

    ``pretrained=True`` writes the package's pretrained ``mini`` LM instead (shipped weights,
    see :mod:`alignment_tax.models.pretrain`); ``pretrain=PretrainConfig(...)`` trains it anew
    from the ``seed``'s random weights (minutes on a CPU).

    ``shape="qwen3-4b"`` (or ``"qwen3-0.6b"``) builds a random LM with that checkpoint's widths
    and vocabulary instead of a ``size`` (see :mod:`alignment_tax.models.qwen3_shapes`), with
    ``layers`` decoder layers (default: the published number), in ``dtype``, initialised on
    ``device`` (default the CPU; ``"cuda"`` draws a 4B model's weights in a second, but other
    values than the CPU's for the same seed).
    """
    _check_choice("kind", kind, KINDS)
    _check_choice("size", size, SIZES)
    check_shape_request(kind, shape, layers, dtype, pretrained or pretrain is not None)
    if pretrained or pretrain is not None:
        check_pretrainable(kind, size)
    if pretrained and pretrain is not None:
        raise UserError("choose one: the shipped pretrained weights, or pretraining anew")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _remove_previous_build(out)
    before = {p.name for p in out.iterdir()}
    max_length = LM_MAX_LENGTH if kind == "lm" else EMBEDDER_MAX_LENGTH
    tokenizer = build_tokenizer(model_max_length=max_length)
    with _seeded_torch(seed):
        if shape is not None:
            n_params, pretraining = _save_shaped_lm(out, tokenizer, shape, layers, dtype, device), None
        elif kind == "lm":
            n_params, pretraining = _save_lm(out, tokenizer, size, pretrained, pretrain, log)
        else:
            n_params, pretraining = _save_embedder(out, tokenizer, size), None
    written = sorted(({p.name for p in out.iterdir()} - before) | {MANIFEST_NAME})
    manifest = {
        "kind": kind,
        "size": size,
        "seed": seed,
        "parameters": n_params,
        "vocab_size": len(tokenizer),
        "alignment_tax_version": __version__,
        "files": written,
    }
    if shape is not None:
        from alignment_tax.models.qwen3_shapes import QWEN3_SHAPES, QWEN3_VOCAB_SIZE

        del manifest["size"]
        manifest.update(
            shape=shape,
            layers=layers or QWEN3_SHAPES[shape]["num_hidden_layers"],
            dtype=dtype,
            embedding_rows=QWEN3_VOCAB_SIZE,
            initialised_on=device or "cpu",
        )
    if pretraining is not None:
        manifest["pretrained"] = pretraining
    (out / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return out


def check_shape_request(kind: str, shape: str | None, layers: int | None, dtype: str, pretrained: bool) -> None:
    """A Qwen3 shape is a random lm; ``layers`` and ``dtype`` go with a shape only."""
    if shape is None:
        if layers is not None or dtype != "float32":
            raise UserError("--layers and --dtype go with --shape")
        return
    from alignment_tax.models.qwen3_shapes import check_shape

    if kind != "lm" or pretrained:
        raise UserError("a Qwen3 shape is for a random lm: not with an embedder or pretrained weights")
    check_shape(shape, layers, dtype)


def check_pretrainable(kind: str, size: str) -> None:
    """Only the ``mini`` LM has pretrained weights (shipped, or trained by :mod:`.pretrain`)."""
    if (kind, size) != ("lm", "mini"):
        raise UserError(f"only the lm of size mini comes pretrained, not the {kind} of size {size}")


def build_tokenizer(model_max_length: int = LM_MAX_LENGTH):
    """The shared tokenizer as a ``PreTrainedTokenizerFast`` with the ChatML template."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(_trained_tokenizer_json()),
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        extra_special_tokens=[CHAT_START],
        chat_template=CHAT_TEMPLATE,
        model_max_length=model_max_length,
        # Neither model needs segment ids; without this ``token_type_ids`` would be returned,
        # and ``generate(**tokenizer(...))`` on the Qwen3 model rejects them.
        model_input_names=["input_ids", "attention_mask"],
        # Cleaning up spaces (" ." -> ".") would break the exact decode round-trip.
        clean_up_tokenization_spaces=False,
    )


@functools.lru_cache(maxsize=1)
def _trained_tokenizer_json() -> str:
    """Train the BPE once per process; the corpus is fixed, so the result is too."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=SPECIAL_TOKENS,
        show_progress=False,
    )
    tokenizer.train_from_iterator(_corpus_lines(), trainer=trainer)
    return tokenizer.to_str()


def _corpus_lines() -> list[str]:
    lines = []
    for name in CORPUS_FILES:
        text = (CORPUS_DIR / name).read_text(encoding="utf-8")
        lines.extend(normalize_text(line) for line in text.splitlines() if line.strip())
    return lines


def new_lm(tokenizer, size: str):
    """A randomly initialised Qwen3 LM of ``size`` for ``tokenizer`` (seed torch first)."""
    from transformers import GenerationConfig, Qwen3Config, Qwen3ForCausalLM

    ids = _special_ids(tokenizer)
    config = Qwen3Config(
        **LM_SHAPES[size],
        vocab_size=len(tokenizer),
        max_position_embeddings=LM_MAX_LENGTH,
        tie_word_embeddings=True,
        dtype="float32",
        **ids,
    )
    model = Qwen3ForCausalLM(config).float().eval()
    model.generation_config = GenerationConfig(**ids)
    return model


def _save_lm(out: Path, tokenizer, size: str, pretrained: bool, pretrain, log) -> tuple[int, dict | None]:
    from alignment_tax.models import pretrain as pretraining

    model = new_lm(tokenizer, size)
    record = None
    if pretrained:
        record = pretraining.load_shipped(model)
    elif pretrain is not None:
        record = {**pretraining.pretrain(model, tokenizer, pretrain, log=log), "source": "trained by this build"}
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return model.num_parameters(), record


def _save_shaped_lm(out: Path, tokenizer, shape: str, layers: int | None, dtype: str, device: str | None) -> int:
    from transformers import GenerationConfig

    from alignment_tax.models.qwen3_shapes import new_shaped_lm, shaped_config

    ids = _special_ids(tokenizer)
    model = new_shaped_lm(shaped_config(shape, layers, ids, dtype), device)
    model.generation_config = GenerationConfig(**ids)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return model.num_parameters()


def _save_embedder(out: Path, tokenizer, size: str) -> int:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import BertConfig, BertModel

    shape = EMBEDDER_SHAPES[size]
    config = BertConfig(
        **shape,
        vocab_size=len(tokenizer),
        max_position_embeddings=2 * EMBEDDER_MAX_LENGTH,
        type_vocab_size=1,
        pad_token_id=tokenizer.pad_token_id,
        dtype="float32",
    )
    # The pooler is kept although mean pooling never reads it: AutoModel, which
    # SentenceTransformer(out) loads through, always builds one, so a checkpoint without it
    # would be re-initialised at random, with a MISSING-weights report, on every load.
    bert = BertModel(config, add_pooling_layer=True).float().eval()
    bert.save_pretrained(out)
    tokenizer.save_pretrained(out)
    # Re-read what was just written, as a user would: this is the path SentenceTransformer(out) takes.
    transformer = Transformer(str(out), max_seq_length=EMBEDDER_MAX_LENGTH)
    pooling = Pooling(shape["hidden_size"], pooling_mode="mean")
    SentenceTransformer(modules=[transformer, pooling], device="cpu").save(str(out))
    return bert.num_parameters()


def _special_ids(tokenizer) -> dict[str, int]:
    # No BOS token: Qwen models have none; pointing bos at <|endoftext|> as Qwen's configs do
    # keeps code that reads ``bos_token_id`` from meeting None.
    return {
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.pad_token_id,
    }


@contextlib.contextmanager
def _seeded_torch(seed: int):
    """Seed torch for weight initialisation without disturbing the caller's RNG state."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _remove_previous_build(out: Path) -> None:
    manifest = out / MANIFEST_NAME
    if not manifest.is_file():
        return
    try:
        files = json.loads(manifest.read_text(encoding="utf-8")).get("files", [])
    except (ValueError, AttributeError):
        return
    for name in files if isinstance(files, list) else []:
        # Only names directly inside ``out``: a damaged manifest must not reach elsewhere.
        if not isinstance(name, str) or name in ("", ".", "..") or Path(name).name != name:
            continue
        path = out / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def _check_choice(what: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise UserError(f"unknown tiny model {what} {value!r}: choose one of {', '.join(choices)}")
