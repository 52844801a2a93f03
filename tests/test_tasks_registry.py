"""Task names and metadata are checked before a model loads; lm-eval's full index only when needed."""

from pathlib import Path

import pytest

from alignment_tax.errors import UserError
from alignment_tax.tasks import OUR_TASKS, TASKS_DIR, registry, scoring

REAL_TASK_MANAGER = registry.task_manager


@pytest.fixture(scope="module")
def full_manager():
    """lm-eval's whole index (about 6 s), built at most once for the module, on first use."""
    built = []

    def get():
        if not built:
            built.append(REAL_TASK_MANAGER({}, include_defaults=True))
        return built[0]

    return get


@pytest.fixture
def counted(monkeypatch, full_manager):
    """``registry.task_manager`` that records include_defaults and reuses the full index."""
    calls = []

    def fake(metadata=None, include_defaults=False):
        calls.append(include_defaults)
        return full_manager() if include_defaults else REAL_TASK_MANAGER(metadata, include_defaults)

    monkeypatch.setattr(registry, "task_manager", fake)
    return calls


def test_our_manager_knows_exactly_our_tasks_and_uses_our_hooks():
    manager = registry.task_manager({"data_dir": "/nowhere"})
    assert sorted(manager.all_tasks) == sorted(OUR_TASKS)
    assert TASKS_DIR == Path(registry.__file__).parent
    assert {path.stem for path in TASKS_DIR.glob("*.yaml")} == set(OUR_TASKS)
    # lm-eval imports hooks.py by path; the functions it gets are the package's own
    from lm_eval.tasks._yaml_loader import load_yaml

    config = load_yaml(TASKS_DIR / "bo_zh_mt.yaml", resolve_func=True)
    assert config["process_results"] is scoring.process_translation
    assert config["metric_list"][0]["aggregation"] is scoring.bleu_zh


def test_the_shared_keys_file_is_included_but_is_no_task():
    """The four YAMLs include one file of shared keys; lm-eval never indexes it as a task, and the
    package's own reading of a YAML (training prompts, metadata) merges it exactly as lm-eval does."""
    from lm_eval.tasks._index import TaskIndex
    from lm_eval.tasks._yaml_loader import load_yaml

    from alignment_tax.tasks.prompts import task_config

    shared = TASKS_DIR / "_default_template_yaml"
    assert shared.is_file() and "task" not in load_yaml(shared, resolve_func=False)
    assert sorted(TaskIndex.build([TASKS_DIR])) == sorted(OUR_TASKS)

    def plain(value):  # lm-eval writes an unresolved "!function x.y" as "<folder>/x.y"
        if isinstance(value, dict):
            return {key: plain(item) for key, item in value.items()}
        if isinstance(value, list):
            return [plain(item) for item in value]
        return value.replace("!function ", f"{TASKS_DIR}/") if isinstance(value, str) else value

    for name in OUR_TASKS:
        text = (TASKS_DIR / f"{name}.yaml").read_text(encoding="utf-8")
        assert "include: _default_template_yaml" in text and "output_type" not in text
        config = load_yaml(TASKS_DIR / f"{name}.yaml", resolve_func=False)
        assert config["output_type"] == "generate_until" and config["generation_kwargs"]["max_gen_toks"] == 256
        assert plain(task_config(name)) == config


def test_resolve_our_names_skips_the_full_index(counted):
    manager, names = registry.resolve_tasks([" cmrc2018", "bo_headline", "cmrc2018"], {"data_dir": "x"})
    assert names == ["cmrc2018", "bo_headline"] and counted == [False]
    assert "cmmlu" not in manager.all_tasks


@pytest.mark.slow
def test_resolve_a_builtin_name_uses_the_full_index(counted, full_manager):
    manager, names = registry.resolve_tasks(["cmmlu", "bo_zh_mt", "belebele_bod_Tibt"], {})
    assert manager is full_manager() and counted == [True]
    assert names == ["cmmlu", "bo_zh_mt", "belebele_bod_Tibt"]
    assert set(OUR_TASKS) <= set(manager.all_tasks)


@pytest.mark.slow
def test_unknown_task_lists_ours(counted):
    with pytest.raises(UserError) as caught:
        registry.resolve_tasks(["cmrc2018", "cmrc2019"], {})
    message = str(caught.value)
    ours = "cmrc2018, bo_zh_mt, zh_bo_mt, bo_headline"
    assert message.startswith(f"unknown task 'cmrc2019'; this package's tasks: {ours};")
    assert "or any lm-eval task (e.g. cmmlu, belebele_zho_Hans)" in message
    assert "did you mean cmrc2018" in message
    with pytest.raises(UserError, match="no task named"):
        registry.resolve_tasks([], {})


def test_metadata_is_checked_and_made_plain():
    assert registry.check_metadata({"data_dir": Path("/d"), "data": {"bo_zh_mt": {"path": Path("/p")}}}) == {
        "data_dir": "/d",
        "data": {"bo_zh_mt": {"path": "/p"}},
    }
    with pytest.raises(UserError, match="may not set 'source_lang'"):
        registry.task_manager({"source_lang": "zh"})
    with pytest.raises(UserError, match="data given for unknown task 'cmmlu'"):
        registry.resolve_tasks(["cmrc2018"], {"data": {"cmmlu": "x"}})
    with pytest.raises(UserError, match="should map task names"):
        registry.check_metadata({"data": "x.jsonl"})


def test_loading_our_tasks_logs_no_metadata_advice(shared_data, caplog):
    with caplog.at_level("DEBUG"):
        registry.task_manager({"data_dir": str(shared_data)}).load(["bo_zh_mt"])
    assert "Custom kwargs" not in caplog.text
