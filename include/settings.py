"""Every setting of the pipeline that a user changes at run time: its Variable name, type and default.

The values live in Airflow Variables (``config/variables.json`` holds the defaults in importable form,
and the README documents them). A task reads a setting with ``mlpipe.settings.setting(name)``, which
hands the Variable's raw text to :func:`parse`; nothing else reads these Variables.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from include.errors import ConfigurationError

MODEL_TYPES = ("random_forest", "linear", "gradient_boosting")
_BOOLEANS = {"true": True, "false": False}  # bool("false") is True: a bool is spelled out


class SettingError(ConfigurationError):
    """A Variable whose value does not have its setting's type."""


@dataclass(frozen=True)
class Setting:
    """One setting: the Variable ``name``, its value type, the value used when it is unset, and why."""

    name: str
    kind: type
    default: Any
    meaning: str

    def parse(self, raw: str | None) -> Any:
        """The typed value of the Variable text ``raw`` (``None``: unset), or ``SettingError``."""
        if raw is None:
            return self.default
        try:
            if self.kind is dict:
                value = json.loads(raw)
                if not isinstance(value, dict):
                    raise TypeError("not a JSON object")
                return value
            if self.kind is str:
                return raw
            if self.kind is bool:
                return _BOOLEANS[raw.strip().lower()]
            return self.kind(raw)
        except KeyError:
            raise SettingError(
                f"Variable {self.name!r} = {raw[:100]!r} is not a valid bool: expected true or false"
            ) from None
        except (TypeError, ValueError) as exc:
            raise SettingError(
                f"Variable {self.name!r} = {raw[:100]!r} is not a valid {self.kind.__name__}: {exc}"
            ) from None


_SETTINGS = (
    Setting(
        "ml_model_type",
        str,
        "random_forest",
        f"model to train: {', '.join(f'`{name}`' for name in MODEL_TYPES)}",
    ),
    Setting(
        "ml_hyperparameters",
        dict,
        {
            "random_forest": {"n_estimators": 100, "max_depth": None},
            "linear": {},
            "gradient_boosting": {"max_iter": 100, "learning_rate": 0.1},
        },
        "JSON: hyperparameters per model type (given to its classifier or regressor, as the schema's "
        "task says)",
    ),
    Setting(
        "accuracy_threshold",
        float,
        0.8,
        "the quality bar: the lowest passing `quality_metric` (the highest, for a metric where lower "
        "is better, such as `rmse`), for a candidate on held-out data and for `monitor` on new data",
    ),
    Setting(
        "quality_metric",
        str,
        "",
        "metric the quality bar and champion/challenger use: classification `accuracy`, `f1_macro`, "
        "`balanced_accuracy`, `roc_auc` (two classes); regression `rmse`, `mae`, `r2`; empty: "
        "`accuracy` or `r2` by the schema's task",
    ),
    Setting("training_window_batches", int, 1, "train on the newest N feature batches"),
    Setting(
        "deploy_margin",
        float,
        0.0,
        "how much worse than production a candidate may score and still be promoted",
    ),
    Setting(
        "approval_required",
        bool,
        False,
        "`true`: a candidate that beats production waits for a person to approve it in the Airflow UI "
        "(Browse > Required Actions) before `deploy` promotes it",
    ),
    Setting(
        "approval_timeout_hours",
        float,
        24.0,
        "how long a candidate waits for approval; then production stays as it is, and a mail says so",
    ),
    Setting(
        "crawl_url",
        str,
        "http://127.0.0.1:8000/iris.csv",
        "the source `ingest` watches: an http(s) URL of one CSV, or a drop folder (any other fsspec URL, "
        "e.g. `file:///srv/drop/`, `s3://bucket/prefix/`) where each new file is a batch; or a JSON list "
        "of such sources, all watched at once",
    ),
    Setting("crawl_timeout_seconds", float, 30.0, "time limit of one request or download of the source"),
    # 1 GB: ingest and etl stream a batch in chunks (include.chunks), so memory no longer grows with it;
    # what bounds it now is temporary disk (about 2.5x the CSV) and time (README, Configuration).
    Setting("crawl_max_bytes", int, 1_000_000_000, "larger content is neither downloaded nor hashed"),
    Setting("crawl_max_columns", int, 1000, "a CSV whose header has more columns is quarantined unread"),
    Setting(
        "crawl_full_listing_seconds",
        float,
        300.0,
        "a drop folder is listed whole this often (other polls list only the files named after its "
        "watermark): how long a file named before the newest received one, or rewritten in place, "
        "may wait",
    ),
    Setting(
        "crawl_notification_queue",
        str,
        "",
        "an SQS queue URL receiving the `s3://` drop folder's bucket notifications: the folder is then "
        "watched through them instead of listings (the whole folder is still listed every "
        "`crawl_full_listing_seconds`); empty: listings",
    ),
    Setting(
        "source_alert_after_seconds",
        float,
        600.0,
        "a source failing every poll for this long is an outage: ingest fails and mails once, and mails "
        "again when the source answers",
    ),
    Setting(
        "source_max_backoff_seconds",
        float,
        60.0,
        "failed polls of a source back off, doubling, up to this many seconds apart",
    ),
    Setting(
        "notification_email",
        str,
        "ml-team@example.com",
        "recipients of alerts and success mails (comma-separated)",
    ),
    Setting("monitor_max_batch_age_hours", float, 24.0, "the newest raw batch must be younger than this"),
    Setting(
        "report_base_url",
        str,
        "",
        "where a browser reaches the model server, for the report links in events, mails and the UI; "
        "empty: the `model_server` connection's address",
    ),
    Setting("monitor_drift_threshold", float, 0.3, "KS statistic above which a feature counts as drifted"),
)

SETTINGS: MappingProxyType[str, Setting] = MappingProxyType({s.name: s for s in _SETTINGS})


def parse(name: str, raw: str | None) -> Any:
    """The value of setting ``name`` given its Variable's text (``None`` when the Variable is unset)."""
    if name not in SETTINGS:
        raise KeyError(f"no setting {name!r}; the settings are: {', '.join(SETTINGS)}")
    return SETTINGS[name].parse(raw)
