"""Health checks of the production model: integrity, data freshness, drift and live quality.

Every check returns a result instead of raising, so one report names every problem at once.
"""

from __future__ import annotations

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
    newest = features.list_feature_batches(root)[-1:]
    if not newest:
        checks.append(CheckResult("newest_batch", False, "no validated batch to check the model against"))
    else:
        current, _, _ = features.load_features(root, newest)
        stats = drift.feature_drift(registry.load_reference(root, version), current, schema)
        drifted = drift.drifted_features(stats, drift_threshold)
        # A column's missing-value drift is shown when there is some: most columns never miss a value.
        shown = {
            name: value for name, value in stats.items() if value or not name.endswith(drift.MISSING_SUFFIX)
        }
        detail = ", ".join(f"{name}={value:.3f}" for name, value in shown.items())
        checks.append(
            CheckResult(
                "drift",
                not drifted,
                f"drift statistic per feature on batch {newest[0]} vs training data (threshold "
                f"{drift_threshold}): {detail}" + (f"; drifted: {', '.join(drifted)}" if drifted else ""),
            )
        )
        if model is not None:
            gate = metrics.metric(registry.version_metadata(root, version)["metric"])
            value = training.evaluate(model, current, schema)[gate.name]
            checks.append(
                CheckResult(
                    "quality",
                    gate.passes(value, threshold),
                    f"{gate.verdict(value, threshold)} on batch {newest[0]}",
                )
            )
    return {
        **report,
        "healthy": all(check.ok for check in checks),
        "checks": [asdict(check) for check in checks],
    }


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


def write_report(root: str, report: dict) -> str:
    """Keep the report under ``monitor/``, named by check time; return its URL."""
    stamp = datetime.fromisoformat(report["checked_at"]).astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    url = layout.monitor_report(root, stamp)
    storage.write_json_atomic(url, report)
    return url
