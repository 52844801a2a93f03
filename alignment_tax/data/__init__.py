"""Reading the project's data: QA items, translation pairs, headline pairs and text corpora.

Every loader takes a local file (``.json``, ``.jsonl``, ``.csv``, ``.tsv``, ``.parquet``), a
dataset folder or a Hugging Face hub id, returns a plain list of frozen records (each with
``to_dict()``), passes every text through :func:`normalize_text`, and turns every problem with
the data into a one-line :class:`~alignment_tax.errors.UserError`::

    from alignment_tax.data import DataDir, load_parallel, load_squad
    data = DataDir("../shared/data")
    questions = load_squad(data.require("cmrc_dev"))
    pairs = load_parallel(data.require("mt_test"), source_lang="bo", target_lang="zh")
"""

from alignment_tax.data.corpus import load_corpus
from alignment_tax.data.flores import load_flores_pairs, zip_rows
from alignment_tax.data.hashing import file_sha256, records_sha256
from alignment_tax.data.headlines import HeadlinePair, load_headlines
from alignment_tax.data.layout import CMHG_HUB, CMRC_HUB, FLORES_CONFIGS, FLORES_HUB, DataDir, HubSource
from alignment_tax.data.normalize import normalize_text
from alignment_tax.data.parallel import LANGUAGES, ParallelPair, load_parallel
from alignment_tax.data.readers import Table, read_json, read_records, read_table
from alignment_tax.data.squad import QAItem, load_squad

__all__ = [
    "CMHG_HUB",
    "CMRC_HUB",
    "FLORES_CONFIGS",
    "FLORES_HUB",
    "LANGUAGES",
    "DataDir",
    "HeadlinePair",
    "HubSource",
    "ParallelPair",
    "QAItem",
    "Table",
    "file_sha256",
    "load_corpus",
    "load_flores_pairs",
    "load_headlines",
    "load_parallel",
    "load_squad",
    "normalize_text",
    "read_json",
    "read_records",
    "read_table",
    "records_sha256",
    "zip_rows",
]
