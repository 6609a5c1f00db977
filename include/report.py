"""The report of a registered model version: one self-contained HTML page a person reads to judge it.

``models/versions/<version>/report.html`` holds every plot as an embedded PNG (nothing is loaded from
anywhere when it is opened, so it works offline, from the model server, or saved from a mail), and
``key_plot.png`` beside it is the plot a mail shows inline (the confusion matrix, or predicted against
actual values). The page says:

- the verdict on the quality bar in words, and every metric against the champion (the production
  model when the version was registered, scored on this version's held-out split: equal terms);
- classification: the confusion matrix and precision, recall, F1 and support per class;
  regression: predicted against actual values and the residuals;
- permutation importance of each original column on the held-out split (the whole pipeline is
  scored, so a category or date column counts once, whatever the preprocessing made of it);
- the training data in brief (rows, batches, class balance or target distribution, missing values);
- the parameters, the lineage (batch ids, feature-data hash, model sha256, schema fingerprint) and the
  quality metric of every registered version over time: production's versions at their registration,
  backtests (``include.backtest``) as a series of their own at the moment they look back to.

The report of a backtest says so at the top (as of when, on which batches) and has no champion:
today's production model may have been trained on its held-out rows.

Plots are drawn with matplotlib's ``Figure`` on the Agg canvas (no pyplot, no display, no global
state). The report is written by ``train_validate``'s ``write_report`` task after ``register``, off the
path that moves the production pointer. Nothing here is imported at module import time but the
standard library.
"""

from __future__ import annotations

import base64
import html
import io
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from include import layout, metrics, registry, storage

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure
    from sklearn.base import BaseEstimator

    from include.config import DatasetSchema

REPORT_FILE = "report.html"
KEY_PLOT_FILE = "key_plot.png"
IMPORTANCE_REPEATS = 5
IMPORTANCE_MAX_ROWS = 2000  # permutation importance costs repeats x columns predictions of the split
HISTORY_VERSIONS = 50
HISTOGRAM_BINS = 20
# The scikit-learn scorer for each gate metric: permutation importance is measured in that metric.
SCORERS = {
    "accuracy": "accuracy",
    "f1_macro": "f1_macro",
    "balanced_accuracy": "balanced_accuracy",
    "roc_auc": "roc_auc",
    "rmse": "neg_root_mean_squared_error",
    "mae": "neg_mean_absolute_error",
    "r2": "r2",
}


@dataclass(frozen=True)
class Report:
    """A rendered report: the page, the PNG a mail shows, and what its numbers were (for tests and
    logs)."""

    html: str
    key_plot: bytes
    facts: dict[str, Any]


def data_summary(train: pd.DataFrame, schema: DatasetSchema) -> dict[str, Any]:
    """The training split in brief, kept in the version's metadata (the report cannot reread the
    training data): rows, the class counts or the target's distribution, missing values per column."""
    import numpy as np

    summary: dict[str, Any] = {"rows": len(train)}
    label = train[schema.label]
    if schema.is_classification:
        counts = label.astype(str).value_counts()
        summary["class_balance"] = {str(name): int(count) for name, count in sorted(counts.items())}
    else:
        values = label.dropna().astype(float).to_numpy()
        if len(values):
            counts, edges = np.histogram(values, bins=HISTOGRAM_BINS)
            quantiles = np.quantile(values, [0, 0.25, 0.5, 0.75, 1])
            summary["target"] = {
                **dict(zip(("min", "p25", "median", "p75", "max"), map(float, quantiles), strict=True)),
                "mean": float(values.mean()),
                "std": float(values.std()),
                "histogram": {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]},
            }
    missing = train[schema.columns].isna().sum()
    summary["missing"] = {str(name): int(count) for name, count in missing.items() if count}
    return summary


def permutation_importances(
    model: BaseEstimator, holdout: pd.DataFrame, schema: DatasetSchema, metric_name: str, seed: int = 0
) -> list[dict[str, Any]]:
    """How much the ``metric_name`` score on ``holdout`` drops when each original column is shuffled
    (mean and standard deviation over repeats), most important first."""
    from sklearn.inspection import permutation_importance

    rows = (
        holdout
        if len(holdout) <= IMPORTANCE_MAX_ROWS
        else holdout.sample(IMPORTANCE_MAX_ROWS, random_state=seed)
    )
    result = permutation_importance(
        model,
        rows[schema.feature_names],
        rows[schema.label],
        scoring=SCORERS.get(metric_name),
        n_repeats=IMPORTANCE_REPEATS,
        random_state=seed,
    )
    ranked = [
        {"feature": name, "mean": float(mean), "std": float(std)}
        for name, mean, std in zip(
            schema.feature_names, result.importances_mean, result.importances_std, strict=True
        )
    ]
    return sorted(ranked, key=lambda item: -item["mean"])


def build_version_report(
    metadata: dict[str, Any],
    model: BaseEstimator,
    holdout: pd.DataFrame,
    schema: DatasetSchema,
    *,
    champion: dict[str, Any] | None = None,
    history: Sequence[dict[str, Any]] = (),
) -> Report:
    """Render the report of the version ``metadata`` describes.

    ``champion`` is ``{"version", "metrics"}`` of the model it was compared with (scored on this
    version's held-out split), or ``None`` when there was none; ``history`` holds ``{"version",
    "created_at", "value", "production", "backtest", "at"}`` per registered version, in the same metric
    (:func:`version_history`).
    """
    gate = metrics.metric(metadata["metric"])
    facts: dict[str, Any] = {"version": metadata["version"], "metric": gate.name}
    sections = [_summary(metadata, gate, champion)]
    features = holdout[schema.feature_names]
    if schema.is_classification:
        section, key_plot = _classification(model, features, holdout[schema.label], facts)
    else:
        section, key_plot = _regression(model, features, holdout[schema.label], facts)
    sections.append(section)
    importances = permutation_importances(model, holdout, schema, gate.name, seed=metadata.get("seed", 0))
    facts["importances"] = importances
    sections.append(_importance(importances, gate))
    sections.append(_training_data(metadata))
    if history:
        sections.append(_history(history, gate))
    sections.append(_parameters(metadata))
    sections.append(_lineage(metadata))
    page = _page(f"Model {metadata['version']}", sections)
    return Report(html=page, key_plot=key_plot, facts=facts)


def version_history(root: str, metric_name: str, limit: int = HISTORY_VERSIONS) -> list[dict[str, Any]]:
    """The ``metric_name`` score (on its own held-out split) of the newest ``limit`` registered versions
    gated on that metric and of the newest ``limit`` backtests (a backfill of many days does not push
    production's versions out), each at the time it stands for (``at``: its registration, or a
    backtest's ``as_of``), oldest first, each saying whether it is production now. At most the newest
    ``10 * limit`` versions are read, so the cost stays bounded however long the history grows."""
    production = registry.production_version(root)
    names = [n for n in storage.list_names(layout.model_versions(root)) if layout.is_id(n)]
    kept: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
    for version in sorted(names, reverse=True)[: 10 * limit]:
        if all(len(items) >= limit for items in kept.values()):
            break
        try:
            metadata = registry.version_metadata(root, version)
        except FileNotFoundError:  # a registration in progress
            continue
        backtest = bool(metadata.get("backtest"))
        if metadata.get("metric") != metric_name or metric_name not in metadata["metrics"]:
            continue
        if len(kept[backtest]) >= limit:
            continue
        kept[backtest].append(
            {
                "version": version,
                "created_at": metadata["created_at"],
                "at": metadata["as_of"] if backtest else metadata["created_at"],
                "value": metadata["metrics"][metric_name],
                "production": version == production,
                "backtest": backtest,
            }
        )
    return sorted([*kept[False], *kept[True]], key=lambda item: item["at"])


def history_series(history: Sequence[dict[str, Any]]) -> dict[str, list[tuple[str, float]]]:
    """The points of the quality-over-time plot, ``(time, value)`` oldest first: ``registered`` (the
    versions train_validate registered as candidates), ``production`` (the one among them serving) and
    ``backtests`` (each at its as-of time)."""
    points = sorted(history, key=lambda item: item.get("at") or item["created_at"])
    return {
        "registered": [(i["created_at"], i["value"]) for i in points if not i.get("backtest")],
        "production": [(i["created_at"], i["value"]) for i in points if i["production"]],
        "backtests": [(i["at"], i["value"]) for i in points if i.get("backtest")],
    }


def champion_of(root: str, version: str) -> str | None:
    """The version ``version`` was up against: production, or (when ``version`` is already production,
    promoted before its report was written) the one it replaced."""
    production = registry.production_version(root)
    if production != version:
        return production
    return storage.read_json(layout.production_pointer(root)).get("previous_version")


def write_version_report(root: str, version: str, schema: DatasetSchema) -> dict[str, Any]:
    """Render the report of the registered ``version`` and write ``report.html`` and ``key_plot.png``
    into its folder; return their URLs and the seconds rendering took. A retry rewrites both."""
    from include.training import evaluate

    started = time.monotonic()
    metadata = registry.version_metadata(root, version)
    model = registry.load_model(root, version)
    holdout = registry.load_holdout(root, version)
    champion = None
    rival = None if metadata.get("backtest") else champion_of(root, version)
    if rival is not None:
        rival_metadata = registry.version_metadata(root, rival)
        if rival_metadata.get("schema_fingerprint") == metadata.get("schema_fingerprint"):
            scores = evaluate(registry.load_model(root, rival), holdout, schema)
            champion = {"version": rival, "metrics": scores}
    history = version_history(root, metadata["metric"])
    report = build_version_report(metadata, model, holdout, schema, champion=champion, history=history)
    storage.write_bytes_atomic(layout.model_version(root, version, KEY_PLOT_FILE), report.key_plot)
    storage.write_bytes_atomic(layout.model_version(root, version, REPORT_FILE), report.html.encode())
    return {
        "version": version,
        "report": layout.model_version(root, version, REPORT_FILE),
        "key_plot": layout.model_version(root, version, KEY_PLOT_FILE),
        "champion": champion and champion["version"],
        "render_seconds": round(time.monotonic() - started, 3),
    }


def report_url(base_url: str, version: str) -> str:
    """Where a browser opens the report of ``version`` on the model server at ``base_url``."""
    return f"{base_url.rstrip('/')}/models/{layout.check_id(version, 'model version')}/report"


# Sections ---------------------------------------------------------------------------------------


def _summary(metadata: dict[str, Any], gate: metrics.Metric, champion: dict[str, Any] | None) -> str:
    passed = gate.passes(metadata["metrics"][gate.name], metadata["threshold"])
    verdict = f'<p class="{"pass" if passed else "fail"}">{_e(metadata["verdict"])}.</p>'
    head = ["metric", "this version"]
    if champion:
        head += [f"champion {champion['version']}", "compared with the champion"]
    rows = []
    for name, value in metadata["metrics"].items():
        row = [_metric_title(name), _number(value)]
        if champion:
            theirs = champion["metrics"].get(name)
            row += [_number(theirs), _comparison(name, value, theirs)]
        rows.append(row)
    backtest = (
        f'<p class="backtest">A backtest as of {_e(metadata["as_of"])}: trained on the '
        f"{len(metadata['batch_ids'])} batch(es) landed by then, as a training then would have been; "
        "registered to show quality over time, never promoted.</p>"
        if metadata.get("backtest")
        else ""
    )
    against = (
        f"<p>Compared with the champion, production version <code>{_e(champion['version'])}</code> when this "
        f"version was registered, scored on this version's held-out split.</p>"
        if champion
        else "<p>No champion to compare with: a backtest is not compared with today's production "
        "model, which may have been trained on its held-out rows.</p>"
        if metadata.get("backtest")
        else "<p>No champion to compare with: no model of this schema was in production.</p>"
    )
    intro = (
        f"<p>A {_e(metadata['model_type'])} {_e(metadata.get('task', 'classification'))} model of "
        f"<code>{_e(metadata.get('schema', ''))}</code>, trained {_e(metadata['created_at'])}. "
        f"Quality bar: {_e(gate.title)} {'at least' if gate.higher_is_better else 'at most'} "
        f"{_e(metadata['threshold'])} on held-out data.</p>"
    )
    return _section("Verdict", backtest + intro + verdict + against + _table(head, rows))


def _classification(
    model: BaseEstimator, features: pd.DataFrame, truth: pd.Series, facts: dict[str, Any]
) -> tuple[str, bytes]:
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    predicted = [str(p) for p in model.predict(features)]
    actual = truth.astype(str).tolist()
    classes = sorted({*actual, *predicted, *(str(c) for c in getattr(model, "classes_", []))})
    matrix = confusion_matrix(actual, predicted, labels=classes)
    precision, recall, f1, support = precision_recall_fscore_support(
        actual, predicted, labels=classes, zero_division=0
    )
    facts["classes"] = classes
    facts["confusion_matrix"] = matrix.tolist()
    facts["per_class"] = {
        name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for name, p, r, f, s in zip(classes, precision, recall, f1, support, strict=True)
    }
    figure, axes = _figure(max(4.0, 0.7 * len(classes) + 2.5), max(3.5, 0.6 * len(classes) + 2))
    image = axes.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axes)
    axes.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    axes.set_yticks(range(len(classes)), classes)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("actual class")
    axes.set_title(f"Confusion matrix ({len(actual)} held-out rows)")
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            colour = "white" if count > matrix.max() / 2 else "black"
            axes.text(j, i, str(count), ha="center", va="center", color=colour)
    key_plot = _png(figure)
    matrix_table = _table(
        ["actual \\ predicted", *classes],
        [[name, *map(str, row)] for name, row in zip(classes, matrix, strict=True)],
    )
    per_class = _table(
        ["class", "precision", "recall", "F1", "support"],
        [
            [name, _number(s["precision"]), _number(s["recall"]), _number(s["f1"]), str(s["support"])]
            for name, s in facts["per_class"].items()
        ],
    )
    body = (
        "<p>Rows are the actual classes of the held-out split, columns what the model predicted; the "
        "diagonal is right.</p>"
        + _img(key_plot, "confusion matrix")
        + matrix_table
        + "<h3>Per class</h3>"
        + per_class
    )
    return _section("Errors by class", body), key_plot


def _regression(
    model: BaseEstimator, features: pd.DataFrame, truth: pd.Series, facts: dict[str, Any]
) -> tuple[str, bytes]:
    import numpy as np

    predicted = np.asarray(model.predict(features), dtype=float)
    actual = truth.astype(float).to_numpy()
    residuals = actual - predicted
    facts["residuals"] = {
        "mean": float(residuals.mean()),
        "std": float(residuals.std()),
        "max_abs": float(np.abs(residuals).max()),
    }
    figure, axes = _figure(5, 4.5)
    axes.scatter(actual, predicted, s=12, alpha=0.6)
    low, high = float(min(actual.min(), predicted.min())), float(max(actual.max(), predicted.max()))
    axes.plot([low, high], [low, high], color="grey", linestyle="--", label="perfect")
    axes.set_xlabel("actual")
    axes.set_ylabel("predicted")
    axes.set_title(f"Predicted against actual ({len(actual)} held-out rows)")
    axes.legend()
    key_plot = _png(figure)
    figure, (left, right) = _figure(10, 4, columns=2)
    left.scatter(predicted, residuals, s=12, alpha=0.6)
    left.axhline(0, color="grey", linestyle="--")
    left.set_xlabel("predicted")
    left.set_ylabel("residual (actual - predicted)")
    left.set_title("Residuals against predictions")
    right.hist(residuals, bins=HISTOGRAM_BINS)
    right.set_xlabel("residual")
    right.set_ylabel("rows")
    right.set_title("Distribution of residuals")
    residual_plot = _png(figure)
    summary = facts["residuals"]
    body = (
        "<p>Each point is a held-out row: on the dashed line the prediction is exact.</p>"
        + _img(key_plot, "predicted against actual")
        + _img(residual_plot, "residuals")
        + _table(
            ["residuals", "value"],
            [
                ["mean (bias)", _number(summary["mean"])],
                ["standard deviation", _number(summary["std"])],
                ["largest absolute", _number(summary["max_abs"])],
            ],
        )
    )
    return _section("Errors", body), key_plot


def _importance(importances: list[dict[str, Any]], gate: metrics.Metric) -> str:
    figure, axes = _figure(6, max(2.5, 0.35 * len(importances) + 1))
    shown = importances[::-1]
    axes.barh(
        [item["feature"] for item in shown],
        [item["mean"] for item in shown],
        xerr=[item["std"] for item in shown],
        color="#4c72b0",
    )
    axes.set_xlabel(f"drop in {gate.title} when the column is shuffled")
    axes.set_title("Permutation importance (held-out split)")
    rows = [[item["feature"], _number(item["mean"]), _number(item["std"])] for item in importances]
    body = (
        f"<p>How much {_e(gate.title)} on the held-out split drops when one column's values are shuffled "
        f"({IMPORTANCE_REPEATS} repeats); near zero: the model does not rely on it.</p>"
        + _img(_png(figure), "permutation importance")
        + _table(["column", "importance", "std"], rows)
    )
    return _section("Which columns matter", body)


def _training_data(metadata: dict[str, Any]) -> str:
    summary = metadata.get("data_summary") or {}
    rows = metadata.get("rows", {})
    parts = [
        f"<p>{_e(rows.get('train', '?'))} training rows and {_e(rows.get('holdout', '?'))} held-out rows "
        f"(test size {_e(metadata.get('test_size'))}, seed {_e(metadata.get('seed'))}), from "
        f"{len(metadata['batch_ids'])} batch(es).</p>"
    ]
    if "class_balance" in summary:
        balance = summary["class_balance"]
        total = sum(balance.values()) or 1
        parts.append(
            "<h3>Class balance (training split)</h3>"
            + _table(
                ["class", "rows", "share"],
                [[name, str(count), f"{count / total:.1%}"] for name, count in balance.items()],
            )
        )
    if "target" in summary:
        target = summary["target"]
        figure, axes = _figure(6, 3)
        edges, counts = target["histogram"]["edges"], target["histogram"]["counts"]
        axes.stairs(counts, edges, fill=True)
        axes.set_xlabel(metadata.get("label", "target"))
        axes.set_ylabel("rows")
        axes.set_title("Target distribution (training split)")
        parts.append(
            "<h3>Target distribution (training split)</h3>"
            + _img(_png(figure), "target distribution")
            + _table(
                ["statistic", "value"],
                [
                    [key, _number(target[key])]
                    for key in ("min", "p25", "median", "p75", "max", "mean", "std")
                ],
            )
        )
    missing = summary.get("missing")
    if missing:
        parts.append(
            "<h3>Missing values (training split)</h3>"
            + _table(["column", "missing"], [[name, str(count)] for name, count in missing.items()])
        )
    elif summary:
        parts.append("<p>No missing values in the training split.</p>")
    return _section("Training data", "".join(parts))


def _history(history: Sequence[dict[str, Any]], gate: metrics.Metric) -> str:
    return _section(
        "Quality over time",
        f"<p>{_e(gate.title)} of every registered version on its own held-out split; the version in "
        "production is marked; backtests are shown apart, each at the date it looks back to.</p>"
        + _img(quality_over_time_png(history, gate), "quality over time"),
    )


def quality_over_time_png(
    history: Sequence[dict[str, Any]],
    gate: metrics.Metric,
    live: Sequence[dict[str, Any]] = (),
    threshold: float | None = None,
) -> bytes:
    """A PNG of the ``gate`` metric over time: each version at its registration (``history``), and
    optionally production measured on new data by ``monitor`` (``live``: ``{"checked_at", "value"}``)."""
    from datetime import datetime, timedelta

    figure, axes = _figure(7, 3.5)
    series = {
        name: [(datetime.fromisoformat(at), value) for at, value in points]
        for name, points in history_series(history).items()
    }
    if series["registered"]:
        axes.plot(*zip(*series["registered"], strict=True), marker="o", label="registered versions")
    if series["production"]:
        axes.scatter(
            *zip(*series["production"], strict=True),
            s=120,
            facecolors="none",
            edgecolors="red",
            zorder=3,
            label="in production",
        )
    if series["backtests"]:
        axes.plot(
            *zip(*series["backtests"], strict=True),
            marker="s",
            linestyle="--",
            color="tab:purple",
            label="backtests (as of)",
        )
    if live:
        axes.plot(
            [datetime.fromisoformat(item["checked_at"]) for item in live],
            [item["value"] for item in live],
            marker=".",
            linestyle=":",
            label="production on new data (monitor)",
        )
    if threshold is not None:
        axes.axhline(threshold, color="grey", linestyle="--", label="quality bar")
    shown = [item.get("at") or item.get("created_at") or item.get("checked_at") for item in (*history, *live)]
    if len(set(shown)) == 1:  # one point: an hour either side, not matplotlib's years
        moment = datetime.fromisoformat(shown[0])
        axes.set_xlim(moment - timedelta(hours=1), moment + timedelta(hours=1))
    axes.set_ylabel(gate.title)
    axes.set_title(f"{gate.title} over time")
    axes.legend(fontsize="small")
    figure.autofmt_xdate()
    return _png(figure)


def _parameters(metadata: dict[str, Any]) -> str:
    rows = [
        ["model type", metadata["model_type"]],
        ["hyperparameters", json.dumps(metadata.get("params", {}), sort_keys=True)],
        ["seed", str(metadata.get("seed"))],
        ["held-out share", str(metadata.get("test_size"))],
        ["quality metric", metadata["metric"]],
        ["threshold", str(metadata["threshold"])],
        ["features", ", ".join(metadata.get("features", []))],
        ["label", str(metadata.get("label"))],
    ]
    return _section("Parameters", _table(["parameter", "value"], rows))


def _lineage(metadata: dict[str, Any]) -> str:
    libraries = ", ".join(f"{name} {value}" for name, value in metadata.get("libraries", {}).items())
    rows = [
        ["version", metadata["version"]],
        ["batches", ", ".join(metadata["batch_ids"])],
        ["feature-data sha256", metadata["feature_hash"]],
        ["model.joblib sha256", metadata["model_sha256"]],
        ["schema", f"{metadata.get('schema')} (fingerprint {metadata.get('schema_fingerprint')})"],
        ["libraries", libraries],
    ]
    return _section("Lineage", _table(["what", "value"], rows))


# Drift pages (monitor) ---------------------------------------------------------------------------


def drift_section(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    schema: DatasetSchema,
    stats: dict[str, float],
    threshold: float,
    current_name: str = "new data",
) -> str:
    """Per feature: the reference (training data) and the new distribution side by side, and the drift
    statistic against ``threshold`` (see ``include.drift``)."""
    import numpy as np

    from include.drift import MISSING_SUFFIX

    compared = [spec for spec in schema.features if spec.name in stats]
    columns = min(3, max(1, len(compared)))
    grid_rows = -(-len(compared) // columns) if compared else 0
    images = ""
    if compared:
        figure, axes = _figure(4 * columns, 2.8 * grid_rows, columns=columns, rows=grid_rows)
        flat = np.atleast_1d(axes).ravel()
        for ax, spec in zip(flat, compared, strict=False):
            before, after = reference[spec.name].dropna(), current[spec.name].dropna()
            if spec.dtype == "str":
                shares = (
                    pd_frame(
                        {
                            "training data": before.astype(str).value_counts(normalize=True),
                            current_name: after.astype(str).value_counts(normalize=True),
                        }
                    )
                    .fillna(0)
                    .head(15)
                )
                positions = np.arange(len(shares))
                ax.bar(positions - 0.2, shares["training data"], width=0.4, label="training data")
                ax.bar(positions + 0.2, shares[current_name], width=0.4, label=current_name)
                ax.set_xticks(positions, [str(i) for i in shares.index], rotation=45, ha="right")
                ax.set_ylabel("share of rows")
            else:
                values = np.concatenate([before.astype(float), after.astype(float)])
                bins = np.histogram_bin_edges(values, bins=HISTOGRAM_BINS) if len(values) else HISTOGRAM_BINS
                ax.hist(before.astype(float), bins=bins, density=True, alpha=0.5, label="training data")
                ax.hist(after.astype(float), bins=bins, density=True, alpha=0.5, label=current_name)
                ax.set_ylabel("density")
            drifted = stats[spec.name] > threshold
            ax.set_title(
                f"{spec.name}: {stats[spec.name]:.3f}{' DRIFTED' if drifted else ''}",
                color="#a11" if drifted else "black",
                fontsize="medium",
            )
            ax.legend(fontsize="x-small")
        for ax in flat[len(compared) :]:
            ax.set_visible(False)
        images = _img(_png(figure), "distributions: training data against new data")
    rows = [
        [name, f"{value:.4f}", "drifted" if value > threshold else "-"]
        for name, value in stats.items()
        if value or not name.endswith(MISSING_SUFFIX)
    ]
    return _section(
        "Drift per feature",
        f"<p>Kolmogorov-Smirnov statistic for numbers, total variation distance for categories, change "
        f"in the share of missing values; above {_e(threshold)} a feature counts as drifted.</p>"
        + images
        + _table(["feature", "statistic", "verdict"], rows),
    )


def page(title: str, sections: Iterable[str]) -> str:
    """A self-contained HTML page of ``sections`` (each already HTML)."""
    return _page(title, sections)


def section(title: str, body: str) -> str:
    return _section(title, body)


def image(png: bytes, alt: str) -> str:
    return _img(png, alt)


def pd_frame(columns: dict[str, Any]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(columns)


# HTML and plotting helpers ----------------------------------------------------------------------

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;margin:.5rem 0 1rem}td,th{border:1px solid #ccc;padding:.25rem .6rem;
text-align:left}th{background:#f3f3f3}code{font-size:.9em}img{max-width:100%;display:block;margin:.5rem 0}
.pass{color:#11622b;font-weight:bold}.fail{color:#a11;font-weight:bold}section{margin-bottom:2rem}
"""


def _page(title: str, sections: Iterable[str]) -> str:
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
        f"<style>{_STYLE}</style></head><body><h1>{_e(title)}</h1>{''.join(sections)}</body></html>"
    )


def _section(title: str, body: str) -> str:
    return f"<section><h2>{_e(title)}</h2>{body}</section>"


def _table(head: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    header = "".join(f"<th>{_e(cell)}</th>" for cell in head)
    body = "".join("<tr>" + "".join(f"<td>{_e(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>"


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _e(value: object) -> str:
    return html.escape(str(value))


def _number(value: object) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _metric_title(name: str) -> str:
    return metrics.METRICS[name].title if name in metrics.METRICS else name


def _comparison(name: str, ours: float, theirs: float | None) -> str:
    if theirs is None or name not in metrics.METRICS:
        return "-"
    if ours == theirs:
        return "the same"
    better = (ours > theirs) == metrics.METRICS[name].higher_is_better
    return f"{'better' if better else 'worse'} by {abs(ours - theirs):.4g}"


def _figure(width: float, height: float, columns: int = 1, rows: int = 1) -> tuple[Figure, Any]:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    return figure, figure.subplots(rows, columns)


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()
