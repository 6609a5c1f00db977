"""What a folder holds, to compare before and after an operation that must (not) change it."""

from __future__ import annotations

from pathlib import Path


def files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (temporary ones too), by relative path, with its bytes."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def snapshot(folder: Path, *, skip: str | None = None) -> dict[str, tuple[int, int]]:
    """Size and modification time of every file and folder under ``folder`` except the subfolder
    ``skip``: a rewrite with the same bytes, or a new empty folder, shows too. Empty if ``folder``
    does not exist."""
    return {
        p.relative_to(folder).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.relative_to(folder).parts[0] != skip
    }
