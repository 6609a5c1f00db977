"""The settings: one definition each, the same defaults as config/variables.json and the README."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from include import settings
from include.settings import SETTINGS, SettingError
from include.training import MODEL_TYPES

REPO = Path(__file__).resolve().parents[3]


def test_variables_json_holds_every_setting_with_its_default():
    exported = json.loads((REPO / "config" / "variables.json").read_text())

    assert set(exported) == set(SETTINGS)
    for name, value in exported.items():
        # `airflow variables import` stores objects as JSON text and strings as they are.
        raw = json.dumps(value) if isinstance(value, dict) else value
        assert settings.parse(name, raw) == SETTINGS[name].default, name


def test_the_readme_documents_every_setting_with_its_default():
    readme = (REPO / "README.md").read_text()
    rows = dict(re.findall(r"^\| `(\w+)` \| `([^`]*)` \|", readme, flags=re.MULTILINE))

    for name, setting in SETTINGS.items():
        assert name in rows, f"README's Configuration table lacks {name}"
        if setting.kind is not dict:
            assert setting.parse(rows[name]) == setting.default, name


def test_unset_is_the_default_and_set_is_typed():
    assert settings.parse("accuracy_threshold", None) == 0.8
    assert settings.parse("accuracy_threshold", "0.75") == 0.75
    assert settings.parse("training_window_batches", "3") == 3
    assert settings.parse("ml_hyperparameters", '{"random_forest": {"n_estimators": 5}}') == {
        "random_forest": {"n_estimators": 5}
    }
    assert settings.parse("crawl_url", "file:///srv/drop/") == "file:///srv/drop/"
    assert settings.parse("approval_required", "true") is True
    assert settings.parse("approval_required", " False") is False


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("accuracy_threshold", "high"),
        ("crawl_max_bytes", "1.5"),
        ("ml_hyperparameters", "[1]"),
        ("ml_hyperparameters", "{not json"),
        ("approval_required", "yes please"),
    ],
)
def test_a_value_of_the_wrong_type_names_the_variable(name, raw):
    with pytest.raises(SettingError, match=f"Variable '{name}'"):
        settings.parse(name, raw)


def test_an_unknown_setting_is_refused():
    with pytest.raises(KeyError, match="no setting 'acuracy_threshold'"):
        settings.parse("acuracy_threshold", "0.8")


def test_the_model_type_names_match_the_trainable_models():
    assert set(settings.MODEL_TYPES) == set(MODEL_TYPES)
    assert SETTINGS["ml_model_type"].default in MODEL_TYPES
    assert set(SETTINGS["ml_hyperparameters"].default) == set(MODEL_TYPES)
