"""The paths and names a spec's run will read, checked without loading a model (``run --dry-run``).

``load_spec`` checks the spec's own values; this looks at the disk: a model path that is a LoRA
adapter folder, a training-data file that is not there, a bundled sample that does not exist.
A real run would fail on each of these only when its stage came up, perhaps hours in; the dry
run, which exists to catch such mistakes before any GPU hour, says so in one line instead.

A name that is not on disk and reads as a hub id (``ORG/NAME``, no file suffix) cannot be checked
offline and is accepted; a path-like name (``./x``, ``/x``, ``a/b/c``, ``data/train.jsonl``) must exist.
Relative paths are read from the working folder, as the run reads them.
"""

from __future__ import annotations

import re
from pathlib import Path

from alignment_tax.errors import UserError
from alignment_tax.experiments.spec import SAMPLES_PREFIX, Spec

# Suffixes of data and model files: "data/train.jsonl" is a file, whatever the hub allows in a name.
_FILE_SUFFIXES = {".json", ".jsonl", ".csv", ".tsv", ".parquet", ".txt", ".arrow", ".gz", ".yaml", ".yml"}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
ADAPTER_CONFIG = "adapter_config.json"


def _hub_id(name: str) -> bool:
    return bool(_HUB_ID.match(name)) and Path(name).suffix.lower() not in _FILE_SUFFIXES


def check_path(value: str, where: str, hint: str = "") -> Path | None:
    """``value`` as an existing path (returned), a hub id (None), or a one-line error."""
    path = Path(value).expanduser()
    if path.exists():
        return path
    if _hub_id(value):
        return None
    raise UserError(f"{where}: {value} not found (from {Path.cwd()}){hint}")


def check_model_path(value: str, where: str) -> None:
    """A model to load: an existing folder that is a whole model, or a hub id."""
    path = check_path(value, where)
    if path is not None and path.is_dir() and (path / ADAPTER_CONFIG).is_file():
        raise UserError(
            f"{where}: {value} is a LoRA adapter folder ({ADAPTER_CONFIG}), not a model; give the model it "
            "was trained on, and train or evaluate the adapter as a stage"
        )


def check_sample(value: str, where: str) -> None:
    from alignment_tax.data import samples

    name = value[len(SAMPLES_PREFIX) :]
    if not isinstance(getattr(samples, name.upper(), None), Path):
        known = sorted(key.lower() for key, item in vars(samples).items() if key.isupper() and isinstance(item, Path))
        raise UserError(f"{where}: no bundled sample {name!r}; choose one of {', '.join(known)}")


def check_inputs(spec: Spec) -> None:
    """Every model path, data file, bundled sample and evaluation input the run will read."""
    for name, model in spec.models.items():
        if "path" in model:
            check_model_path(str(model["path"]), f"models.{name}.path")
    for name, source in spec.data.items():
        where = f"data.{name}"
        if source.startswith(SAMPLES_PREFIX):
            check_sample(source, where)
        else:
            check_path(source, where, "; docs/experiments.md, 'Training data', says how to make one")
    options = (spec.evaluate or {}).get("options") or {}
    if options.get("data_dir"):
        folder = check_path(str(options["data_dir"]), "evaluate.options.data_dir")
        if folder is not None and not folder.is_dir():
            raise UserError(f"evaluate.options.data_dir: {options['data_dir']} is not a folder")
    for task, source in (options.get("data") or {}).items():
        check_path(str(source), f"evaluate.options.data.{task}")
    if options.get("drift_corpus"):
        check_path(str(options["drift_corpus"]), "evaluate.options.drift_corpus")
    template = ((spec.judge or {}).get("options") or {}).get("template")
    if template:
        check_path(str(template), "judge.options.template")
