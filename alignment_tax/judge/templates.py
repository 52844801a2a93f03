"""Judge prompt templates: versioned YAML data files, rendered into chat messages.

A template file (see ``templates/*.yaml``) holds ``name``, ``version``, the ``tasks`` it
serves, ``uses_reference``, and the ``system``, ``user`` and ``reask`` texts with ``$name``
placeholders (:class:`string.Template`, so the JSON braces in the instructions need no
escaping and nothing in a candidate's text is ever interpreted). Placeholders: ``$source``,
``$first``, ``$second``, ``$reference`` (only when ``uses_reference``), ``$source_language``
and ``$target_language``.

>>> template = template_for_task("bo_zh_mt")
>>> (template.name, template.version, template.uses_reference)
('translation', 1, False)
>>> messages = template.render("bo_zh_mt", source="ཀ", first="甲", second="乙")
>>> [m["role"] for m in messages], "<candidate_1>\\n甲\\n</candidate_1>" in messages[1]["content"]
(['system', 'user'], True)
"""

from __future__ import annotations

import functools
import string
from dataclasses import dataclass
from pathlib import Path

import yaml

from alignment_tax.errors import UserError

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
LANGUAGE_NAMES = {"bo": "Tibetan", "zh": "Simplified Chinese"}
# task -> (language of the source shown, language the candidates should be in)
TASK_LANGUAGES = {"bo_zh_mt": ("bo", "zh"), "zh_bo_mt": ("zh", "bo"), "bo_headline": ("bo", "bo")}
_REQUIRED = ("name", "version", "tasks", "system", "user", "reask")


@dataclass(frozen=True)
class JudgeTemplate:
    name: str
    version: int
    tasks: tuple[str, ...]
    uses_reference: bool
    system: str
    user: str
    reask: str
    path: str

    @property
    def label(self) -> str:
        """``name@version``, as results and cache keys record it."""
        return f"{self.name}@{self.version}"

    def render(
        self, task: str, *, source: str, first: str, second: str, reference: str | None = None
    ) -> list[dict[str, str]]:
        """The system and user messages for one comparison, ``first`` shown as candidate 1."""
        source_lang, target_lang = TASK_LANGUAGES[task]
        values = {
            "source": source,
            "first": first,
            "second": second,
            "reference": reference if self.uses_reference else "",
            "source_language": LANGUAGE_NAMES[source_lang],
            "target_language": LANGUAGE_NAMES[target_lang],
        }
        if self.uses_reference and reference is None:
            raise UserError(f"judge template {self.label} needs a reference, and an item has none")
        return [
            {"role": "system", "content": string.Template(self.system).substitute(values)},
            {"role": "user", "content": string.Template(self.user).substitute(values)},
        ]

    def reask_messages(self, messages: list[dict[str, str]], reply: str) -> list[dict[str, str]]:
        """The conversation continued after an unreadable ``reply``: asked once more, in context."""
        return [*messages, {"role": "assistant", "content": reply}, {"role": "user", "content": self.reask}]


def load_template(path: str | Path) -> JudgeTemplate:
    """Read and check one template file."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise UserError(f"cannot read judge template {path}: {error}") from error
    missing = [key for key in _REQUIRED if not isinstance(data, dict) or key not in data]
    if missing:
        raise UserError(f"judge template {path} lacks {', '.join(missing)}")
    template = JudgeTemplate(
        name=str(data["name"]),
        version=int(data["version"]),
        tasks=tuple(data["tasks"]),
        uses_reference=bool(data.get("uses_reference", False)),
        system=str(data["system"]),
        user=str(data["user"]),
        reask=str(data["reask"]),
        path=str(path),
    )
    # A placeholder typo would otherwise surface only as a KeyError mid-run.
    known = {"source", "first", "second", "reference", "source_language", "target_language"}
    for part in (template.system, template.user):
        names = {m.group("named") or m.group("braced") for m in string.Template.pattern.finditer(part)} - {None}
        if names - known:
            raise UserError(f"judge template {path}: unknown placeholder(s) {sorted(names - known)}")
    if "$first" not in template.user or "$second" not in template.user or "$source" not in template.user:
        raise UserError(f"judge template {path}: the user text must show $source, $first and $second")
    return template


@functools.cache
def builtin_templates() -> dict[str, JudgeTemplate]:
    """The shipped templates by task (the highest version of each name wins)."""
    by_task: dict[str, JudgeTemplate] = {}
    for path in sorted(TEMPLATES_DIR.glob("*.yaml")):
        template = load_template(path)
        for task in template.tasks:
            if task not in by_task or by_task[task].version < template.version:
                by_task[task] = template
    return by_task


def template_for_task(task: str, path: str | Path | None = None) -> JudgeTemplate:
    """The template for ``task``: the shipped one, or the file at ``path`` if given."""
    if task not in TASK_LANGUAGES:
        raise UserError(f"no judge template for task {task!r}; judged tasks: {', '.join(TASK_LANGUAGES)}")
    if path is not None:
        template = load_template(path)
        if task not in template.tasks:
            raise UserError(f"judge template {path} is for {', '.join(template.tasks)}, not {task}")
        return template
    return builtin_templates()[task]
