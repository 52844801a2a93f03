"""Reading a Hugging Face hub dataset (or a local dataset folder) through ``datasets.load_dataset``.

A name that is not a local path and looks like ``owner/name`` or ``name`` is a hub id:

>>> looks_like_hub_id("hfl/cmrc2018"), looks_like_hub_id("cmrc2018")
(True, True)
>>> looks_like_hub_id("data/dev.jsonl"), looks_like_hub_id("./x"), looks_like_hub_id("a/b/c")
(False, False, False)

Every failure of the hub (offline, not found, gated, a wrong config or split) becomes one
:class:`UserError` line. ``HF_HUB_OFFLINE`` / ``HF_DATASETS_OFFLINE`` are honoured even when
they are set after ``datasets`` was imported (both libraries read them once, at import), so an
offline run fails at once instead of retrying the network for half a minute.

A machine that cannot reach the hub at all (no DNS, no route) is treated the same way without
being told: :func:`use_cache_if_hub_unreachable` asks once per process, in seconds, and then
switches the libraries to their caches. huggingface_hub would otherwise retry every file five
times with back-off (about 25 s each, nearly a minute for one model) before failing.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import socket
import sys
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from alignment_tax.errors import UserError

_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")
# A name ending like a data file is a missing file, not a hub id.
_FILE_SUFFIXES = (".json", ".jsonl", ".ndjson", ".csv", ".tsv", ".parquet", ".txt", ".gz", ".xlsx", ".zip")
_OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
_TRUE = {"1", "ON", "YES", "TRUE"}
_MAX_REASON = 300
# A direct connection says nothing about a hub reached through a proxy: no probe there.
_PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")
_PROBE_TIMEOUT = 5.0


def looks_like_hub_id(name: str) -> bool:
    """True for ``owner/name`` or ``name`` that does not end like a data file."""
    name = str(name)
    return bool(_HUB_ID.match(name)) and not name.lower().endswith(_FILE_SUFFIXES) and ".." not in name


def offline_requested() -> bool:
    """Whether the environment asks for offline mode right now (not at import time)."""
    return any(os.environ.get(var, "").strip().upper() in _TRUE for var in _OFFLINE_VARS)


@functools.lru_cache(maxsize=1)
def hub_unreachable() -> str | None:
    """Why the hub's host cannot be reached (``"huggingface.co: Name or service not known"``), or None.

    One TCP connection, once per process; never behind a proxy or when offline is requested.
    """
    if offline_requested() or any(os.environ.get(var) for var in _PROXY_VARS):
        return None
    endpoint = urlsplit(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host = endpoint.hostname or "huggingface.co"
    port = endpoint.port or (80 if endpoint.scheme == "http" else 443)
    try:
        with socket.create_connection((host, port), timeout=_PROBE_TIMEOUT):
            return None
    except OSError as error:
        return f"{host}: {error.strerror or type(error).__name__}"


def use_cache_if_hub_unreachable() -> str | None:
    """Put huggingface_hub, transformers and datasets in offline mode if the hub cannot be reached.

    Returns the reason when it did (for error messages), else None. Files already in the cache
    still load; anything else fails at once instead of after a minute of retries.
    """
    reason = hub_unreachable()
    if reason is None:
        return None
    os.environ["HF_HUB_OFFLINE"] = "1"  # for libraries imported from now on
    import huggingface_hub.constants as hub_constants

    hub_constants.HF_HUB_OFFLINE = True  # read at call time by huggingface_hub and transformers
    if "datasets" in sys.modules:
        import datasets.config as ds_config

        ds_config.HF_HUB_OFFLINE = ds_config.HF_DATASETS_OFFLINE = True
    return reason


def unreachable_note() -> str:
    """`` (the Hugging Face hub is unreachable: ...; only cached files can be used)``, or ``""``."""
    reason = hub_unreachable()
    return f" (the Hugging Face hub is unreachable: {reason}; only cached files can be used)" if reason else ""


@contextlib.contextmanager
def _honour_offline_env() -> Iterator[None]:
    """Make offline variables set after import take effect for one call, then restore."""
    if not offline_requested():
        yield
        return
    import datasets.config as ds_config
    import huggingface_hub.constants as hub_constants

    saved = (ds_config.HF_HUB_OFFLINE, ds_config.HF_DATASETS_OFFLINE, hub_constants.HF_HUB_OFFLINE)
    ds_config.HF_HUB_OFFLINE = ds_config.HF_DATASETS_OFFLINE = hub_constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        ds_config.HF_HUB_OFFLINE, ds_config.HF_DATASETS_OFFLINE, hub_constants.HF_HUB_OFFLINE = saved


@contextlib.contextmanager
def hub_or_cache() -> Iterator[None]:
    """Around a call that may fetch from the hub: the caches only, when offline is asked (even
    after import) or the hub cannot be reached; the hub otherwise."""
    use_cache_if_hub_unreachable()
    with _honour_offline_env():
        yield


def _exception_chain(exc: BaseException) -> list[BaseException]:
    chain, seen = [], set()
    while exc is not None and id(exc) not in seen:
        chain.append(exc)
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return chain


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 3] + "..."


def hub_failure_reason(exc: BaseException) -> str:
    """A short guess at why loading failed: offline?, not found, gated, bad config or split.

    >>> hub_failure_reason(ConnectionError("Couldn't reach 'x/y' on the Hub (OfflineModeIsEnabled)"))
    'offline?'
    """
    chain = _exception_chain(exc)
    names = " ".join(type(e).__name__ for e in chain)
    text = " ".join(str(e) for e in chain).lower()
    if "Gated" in names or "gated" in text:
        return "gated: accept its terms on huggingface.co, then log in with `hf auth login`"
    if "builderconfig" in text or "config name is missing" in text:
        return "unknown config; set the config name"
    if "unknown split" in text or ("split" in text and "should be one of" in text):
        return "unknown split; set the split"
    if "Offline" in names or "offline" in text or "couldn't reach" in text or "ConnectionError" in names:
        return "offline?"
    if "NotFound" in names or "doesn't exist" in text or "not found" in text:
        return "not found"
    return type(exc).__name__


def _why_only_the_cache() -> str | None:
    """Why only cached files could be used (``"HF_HUB_OFFLINE set"``), or None if the hub could answer."""
    # The probe's answer first: switching to the caches sets HF_HUB_OFFLINE itself.
    reason = hub_unreachable()
    if reason:
        return f"the hub is unreachable: {reason}"
    asked = [var for var in _OFFLINE_VARS if os.environ.get(var, "").strip().upper() in _TRUE]
    return f"{' and '.join(asked)} set" if asked else None


def why_only_the_cache() -> str | None:
    """Public name of :func:`_why_only_the_cache`: callers add what to do instead of the hub."""
    return _why_only_the_cache()


def dataset_failure(name: str, config: str | None, error: BaseException) -> str:
    """One line on why the hub dataset ``name`` (``config``) did not load, for a :class:`UserError`."""
    label = repr(name) + (f" (config {config!r})" if config else "")
    reason = hub_failure_reason(error)
    only_cache = _why_only_the_cache() if reason == "offline?" else None
    if only_cache:
        return f"{label} could not be loaded offline (not in the Hugging Face cache; {only_cache})"
    return (
        f"{label} could not be loaded from the Hugging Face hub ({reason}): {_one_line(str(error))}{unreachable_note()}"
    )


def load_dataset_records(
    name: str, *, split: str, config: str | None = None, what: str = "the Hugging Face hub"
) -> list[dict[str, Any]]:
    """``datasets.load_dataset(name, name=config, split=split)`` as a list of dicts.

    ``what`` names where the data was looked for, for the message (a folder, or the hub).
    Raises :class:`UserError` with the reason in one line on any failure.
    """
    try:
        import datasets
    except ImportError as exc:  # pragma: no cover - datasets is a dependency
        raise UserError(f"reading {name!r} needs the `datasets` package: pip install datasets") from exc
    try:
        with hub_or_cache():
            dataset = datasets.load_dataset(name, name=config, split=split)
    except UserError:
        raise
    except Exception as exc:  # the hub fails in many ways, all of them the user's to fix
        where = f" (config {config!r}, split {split!r})" if config else f" (split {split!r})"
        raise UserError(
            f"could not load {name!r}{where} from {what} ({hub_failure_reason(exc)}): {_one_line(str(exc))}"
            f"{unreachable_note()}"
        ) from exc
    if isinstance(dataset, datasets.DatasetDict):  # pragma: no cover - split is always given
        raise UserError(f"{name!r}: choose a split among {', '.join(dataset)}")
    return dataset.to_list()
