"""The streaming memory bound, measured: landing, validation and features of a large batch in a fresh
process, whose peak RSS is read by that process itself (Linux's ``VmHWM``: ``ru_maxrss`` would carry
the forking pytest process's peak over ``execve``), as ``bench/etl_scale.py`` does."""

from __future__ import annotations

from bench import etl_scale

# docs/architecture.md and docs/performance.md: "under 350 MB above the imports for any batch up to
# crawl_max_bytes (1 GB of CSV)".
BOUND_MB = 350
ROWS = 5_000_000  # 161 MB of CSV


def test_a_161_mb_batch_lands_validates_and_becomes_features_in_under_350_mb_above_the_imports(tmp_path):
    """5M Iris rows (161 MB of CSV) go through ``receive`` + ``land`` + ``validate_and_quarantine`` +
    ``build_features`` in a child process, as the tasks call them; the child's peak RSS minus its RSS
    after its imports (the memory the data costs) must be under 350 MB.

    What this proves: the bound for a batch of 161 MB, a sixth of the 1 GB the docs promise it for,
    not the 1 GB itself. A stage that held the batch whole would fail here: the whole-batch code
    peaked at 1,536 MB at twice this size (docs/performance.md), about 4x the CSV. Measured: 208 MB
    at this size and 249 MB at 10M rows (322 MB of CSV, 135 s at load average 13), so the cost still
    grows with the batch; a 1 GB run takes several minutes on a loaded 2-core machine, past a unit
    tier's budget (``make bench`` runs it). This one takes 45-110 s at load average 8-14, a third of
    it generating the CSV."""
    csv = tmp_path / "batch.csv"
    etl_scale.make_csv(csv, ROWS)
    assert csv.stat().st_size > 150 * 2**20

    result = etl_scale._spawn("pipeline", csv, tmp_path / "root", timeout=600)

    assert "error" not in result, result
    assert result["valid"], "the generated batch must pass validation, or features would not run"
    data_mb = result["peak_rss_mb"] - result["rss_after_imports_mb"]
    assert data_mb < BOUND_MB, f"the batch cost {data_mb:.0f} MB above the imports: {result}"
