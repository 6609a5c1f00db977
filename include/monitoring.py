"""Health checks of the production model: integrity, data freshness, drift and live quality; and
drift on arrival.

Every check returns a result instead of raising, so one report names every problem at once.

Drift is measured when data arrives (:func:`arrival_drift`, ``etl``'s ``check_drift``), against the
training data of the model in production then, before a model retrained on the new data can replace
it: a model trained on a batch would see no drift in it. ``monitor`` then reports a drift that
retraining absorbed as information (check ``drift_absorbed``), with the old model's score on the
drifted data and the new model's on its held-out split.
"""

from __future__ import annotations

import html
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from include import batches, drift, features, layout, metrics, registry, storage, training
from include.config import DatasetSchema


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str


def health_report(
    root: str,
    schema: DatasetSchema,
    *,
    max_batch_age: timedelta,
    drift_threshold: float,
    threshold: float,
    now: datetime | None = None,
) -> dict:
    """Run every check on the production model; the report says ``healthy`` when all pass. The quality
    check scores the metric the model was gated on against ``threshold``, in that metric's direction.

    Before the first promotion there is nothing to watch: the report is healthy with no checks.
    """
    now = now or datetime.now(UTC)
    version = registry.production_version(root)
    report = {"version": version, "checked_at": now.isoformat(), "checks": []}
    if version is None:
        return {**report, "healthy": True, "note": "no model in production yet"}
    checks = [_freshness(root, now, max_batch_age)]
    try:
        model = registry.load_model(root, version)
        checks.append(CheckResult("integrity", True, f"model.joblib of {version} matches its sha256"))
    except (registry.IntegrityError, FileNotFoundError) as exc:
        model = None
        checks.append(CheckResult("integrity", False, str(exc)))
    metadata = registry.version_metadata(root, version)
    newest = features.list_feature_batches(root)[-1:]
    report["drift"] = None
    if not newest:
        checks.append(CheckResult("newest_batch", False, "no validated batch to check the model against"))
    else:
        current, _, _ = features.load_features(root, newest)
        reference = registry.load_reference(root, version)
        stats = drift.feature_drift(reference, current, schema)
        drifted = drift.drifted_features(stats, drift_threshold)
        report["drift"] = {
            "batch_id": newest[0],
            "stats": stats,
            "drifted": drifted,
            "threshold": drift_threshold,
        }
        report["_frames"] = (reference, current)
        # A column's missing-value drift is shown when there is some: most columns never miss a value.
        shown = {
            name: value for name, value in stats.items() if value or not name.endswith(drift.MISSING_SUFFIX)
        }
        detail = ", ".join(f"{name}={value:.3f}" for name, value in shown.items())
        checks.append(
            CheckResult(
                "drift",
                not drifted,
                (
                    "production was trained on this batch: drift on its arrival is in drift_absorbed; "
                    if newest[0] in metadata["batch_ids"]
                    else ""
                )
                + f"drift statistic per feature on batch {newest[0]} vs training data (threshold "
                f"{drift_threshold}): {detail}" + (f"; drifted: {', '.join(drifted)}" if drifted else ""),
            )
        )
        if model is not None:
            gate = metrics.metric(metadata["metric"])
            value = training.evaluate(model, current, schema)[gate.name]
            report["quality"] = {
                "metric": gate.name,
                "value": value,
                "batch_id": newest[0],
                "version": version,
            }
            checks.append(
                CheckResult(
                    "quality",
                    gate.passes(value, threshold),
                    f"{gate.verdict(value, threshold)} on batch {newest[0]}",
                )
            )
    checks.extend(_absorbed_drift(root, metadata))
    return {
        **report,
        "healthy": all(check.ok for check in checks),
        "checks": [asdict(check) for check in checks],
    }


def _absorbed_drift(root: str, metadata: dict) -> list[CheckResult]:
    """An informational check per batch ``metadata``'s model was trained on that had drifted, on
    arrival, from the training data of the model it replaced."""
    found = []
    for batch_id in metadata["batch_ids"]:
        url = layout.drift_record(root, batch_id)
        if not storage.exists(url):
            continue
        record = storage.read_json(url)
        if not record.get("drifted") or record.get("version") in (None, metadata["version"]):
            continue
        gate = metrics.metric(record["metric"])
        found.append(
            CheckResult(
                "drift_absorbed",
                True,
                f"batch {batch_id} had drifted from the training data of {record['version']} "
                f"({', '.join(record['drifted'])}); {record['version']} scored {gate.title} "
                f"{record['score']} on it, the retrained {metadata['version']} scores "
                f"{metadata['metrics'].get(gate.name)} on its held-out split",
            )
        )
    return found


def model_before(root: str, batch_ids: list[str]) -> str | None:
    """The production model the batches ``batch_ids`` arrived to: production now, or the version it
    replaced when production was already trained on one of them (retraining was quicker)."""
    version = registry.production_version(root)
    if version is None:
        return None
    if set(batch_ids) & set(registry.version_metadata(root, version)["batch_ids"]):
        return storage.read_json(layout.production_pointer(root)).get("previous_version")
    return version


def arrival_drift(
    root: str, schema: DatasetSchema, batch_ids: list[str], threshold: float, now: datetime | None = None
) -> dict:
    """Drift of the newly arrived feature batches ``batch_ids`` against the training data of the
    production model they arrived to (:func:`model_before`), and that model's quality metric on them.
    Kept as ``monitor/drift/<newest batch id>.json`` with a page (``.html``) showing each feature's two
    distributions; returned with ``drifted`` (the features over ``threshold``) and the page's URL."""
    from include import report as pages

    now = now or datetime.now(UTC)
    newest = max(batch_ids)
    record: dict = {"batch_id": newest, "batch_ids": sorted(batch_ids), "checked_at": now.isoformat()}
    version = model_before(root, batch_ids)
    if version is None:
        return {**record, "version": None, "drifted": [], "note": "no model in production to compare with"}
    metadata = registry.version_metadata(root, version)
    if metadata.get("schema_fingerprint") != schema.fingerprint:
        return {**record, "version": version, "drifted": [], "note": "production has another schema"}
    reference = registry.load_reference(root, version)
    current, _, _ = features.load_features(root, batch_ids)
    stats = drift.feature_drift(reference, current, schema)
    gate = metrics.metric(metadata["metric"])
    score = training.evaluate(registry.load_model(root, version), current, schema)[gate.name]
    record |= {
        "version": version,
        "threshold": threshold,
        "stats": stats,
        "drifted": drift.drifted_features(stats, threshold),
        "metric": gate.name,
        "score": score,
        "absorbed_by": None,
    }
    production = registry.production_version(root)
    if production != version:  # a model retrained on these batches is already in production
        metrics_now = registry.version_metadata(root, production)["metrics"]
        record["absorbed_by"] = {"version": production, "score": metrics_now.get(gate.name)}
    summary = (
        f"<p>Batch(es) {', '.join(record['batch_ids'])} ({len(current)} rows) against the training data "
        f"of production version <code>{version}</code>, which scores {gate.title} {score} on them "
        f"({gate.verdict(score, metadata['threshold'])}). Drifted: "
        f"{', '.join(record['drifted']) or 'nothing'}.</p>"
    )
    if record["absorbed_by"]:
        summary += (
            f"<p>Already absorbed by retraining: <code>{record['absorbed_by']['version']}</code>, trained on "
            f"them, is in production and scores {gate.title} {record['absorbed_by']['score']} on its "
            "held-out split.</p>"
        )
    html = pages.page(
        f"Drift of batch {newest}",
        [
            pages.section("Summary", summary),
            pages.drift_section(reference, current, schema, stats, threshold),
        ],
    )
    storage.write_bytes_atomic(layout.drift_record(root, newest, ".html"), html.encode())
    storage.write_json_atomic(layout.drift_record(root, newest), record)
    return {**record, "report": layout.drift_record(root, newest, ".html")}


def monitor_history(root: str, metric_name: str, limit: int = 200) -> list[dict]:
    """Production's ``metric_name`` on new data at each of the newest ``limit`` monitor runs."""
    names = sorted(n for n in storage.list_names(layout.join(root, "monitor"), ".json"))[-limit:]
    history = []
    for name in names:
        report = storage.read_json(layout.join(root, "monitor", name))
        quality = report.get("quality") or {}
        if quality.get("metric") == metric_name:
            history.append(
                {
                    "checked_at": report["checked_at"],
                    "value": quality["value"],
                    "version": quality.get("version"),
                }
            )
    return history


def _freshness(root: str, now: datetime, max_age: timedelta) -> CheckResult:
    landed = batches.list_raw_batches(root)
    if not landed:
        return CheckResult("freshness", False, "no raw batch has landed")
    newest = batches.raw_manifest(root, landed[-1])
    age = now - datetime.fromisoformat(newest["landed_at"])
    return CheckResult(
        "freshness",
        age <= max_age,
        f"newest batch {newest['batch_id']} landed {age.total_seconds() / 3600:.1f} h ago "
        f"(maximum {max_age.total_seconds() / 3600:g} h)",
    )


def report_stamp(report: dict) -> str:
    """The name of a health report: its check time."""
    return datetime.fromisoformat(report["checked_at"]).astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def write_report(root: str, report: dict, schema: DatasetSchema | None = None) -> str:
    """Keep the report under ``monitor/``, named by check time, with (given ``schema``) its page: the
    checks, the newest batch's distributions against production's training data per feature, and the
    quality metric over time; return the JSON's URL."""
    frames = report.pop("_frames", None)
    stamp = report_stamp(report)
    url = layout.monitor_report(root, stamp)
    storage.write_json_atomic(url, report)
    if schema is not None:
        storage.write_bytes_atomic(
            layout.monitor_report(root, stamp, ".html"), _page(root, report, schema, frames).encode()
        )
    return url


def _page(root: str, report: dict, schema: DatasetSchema, frames: tuple | None) -> str:
    from include import report as pages

    rows = "".join(
        f"<tr><td>{'ok' if c['ok'] else 'FAILED'}</td><td>{html.escape(c['name'])}</td>"
        f"<td>{html.escape(c['detail'])}</td></tr>"
        for c in report["checks"]
    )
    sections = [
        pages.section(
            "Checks",
            f"<p>Production version <code>{html.escape(str(report['version']))}</code>, checked "
            f"{html.escape(report['checked_at'])}: {'healthy' if report['healthy'] else 'UNHEALTHY'}.</p>"
            f"<table><tbody>{rows}</tbody></table>",
        )
    ]
    drifted = report.get("drift")
    if drifted and frames is not None:
        sections.append(
            pages.drift_section(
                *frames, schema, drifted["stats"], drifted["threshold"], f"batch {drifted['batch_id']}"
            )
        )
    if report.get("version"):
        gate = metrics.metric(registry.version_metadata(root, report["version"])["metric"])
        history = pages.version_history(root, gate.name)
        live = monitor_history(root, gate.name)
        png = pages.quality_over_time_png(history, gate, live)
        sections.append(pages.section("Quality over time", pages.image(png, "quality over time")))
    return pages.page(f"Monitor report {report['checked_at']}", sections)
