"""The README and docs/ stay true to the repository: what they cite exists, and their links resolve.

Plain file reading, no stack: every `make` target, Variable, environment variable, repository path and
test name cited in README.md and docs/*.md exists; every relative link (and its #anchor) resolves;
`make help` lists every target of the Makefile with its description.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest

from include.settings import SETTINGS

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# Where the local stacks and the pipeline keep their state: cited in the docs, never in the repository.
STATE = {".venv", ".airflow", ".airflow-celery", "data", ".env", ".git", ".ruff_cache", "__pycache__"}
# Environment variables cited for what they do outside this repository, which no file of ours names:
# glibc's, set by hand in a memory experiment (docs/performance.md).
FOREIGN_ENV = {"MALLOC_MMAP_THRESHOLD_"}
# A Variable is cited by name in backticks; names with these prefixes are settings, so a typo in one
# (`crawl_max_byte`) is caught too.
SETTING_PREFIXES = (
    "ml_",
    "crawl_",
    "monitor_",
    "accuracy_",
    "deploy_",
    "training_",
    "notification_",
    "approval_",
)

FENCE = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)
SPAN = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^(#{1,6}) +(.+?) *#*$", re.MULTILINE)
MAKE = re.compile(r"\bmake +([a-z][a-z0-9/-]*)")
ENV_VAR = re.compile(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]*)+\b")
TEST_NAME = re.compile(r"\btest_\w+")


def _rel(path: Path) -> str:
    return str(path.relative_to(REPO))


@cache
def _text(path: Path) -> str:
    return path.read_text()


def _code(path: Path) -> tuple[list[str], list[str]]:
    """The inline code spans and the fenced code blocks of a markdown file."""
    text = _text(path)
    blocks = FENCE.findall(text)
    return SPAN.findall(FENCE.sub("", text)), blocks


def _cited(pattern: re.Pattern, *, in_blocks: bool = True, group: int = 0) -> list[tuple[str, str]]:
    """(file, match) for every match of ``pattern`` (its ``group``) in the code spans of every doc, and
    with ``in_blocks`` in its fenced code blocks too."""
    found = []
    for doc in DOCS:
        spans, blocks = _code(doc)
        for chunk in spans + (blocks if in_blocks else []):
            found += [(_rel(doc), m.group(group)) for m in pattern.finditer(chunk)]
    return found


# -- make targets ----------------------------------------------------------------------------------


@cache
def makefile_targets() -> dict[str, str]:
    """Every target of the Makefile (rules and .PHONY names, not file targets) -> its ``##`` text."""
    text = _text(REPO / "Makefile")
    targets = {}
    for match in re.finditer(r"^([a-z][a-z0-9-]*):(?!=)([^\n]*)$", text, re.MULTILINE):
        _, _, description = match.group(2).partition("##")
        targets[match.group(1)] = description.strip()
    for phony in re.findall(r"^\.PHONY:(.*)$", text, re.MULTILINE):
        for name in phony.split():
            targets.setdefault(name, "")
    return targets


def test_every_make_target_cited_exists():
    targets = makefile_targets()
    missing = {
        (doc, f"make {target}")
        for doc, cited in _cited(MAKE, group=1)
        for target in cited.split("/")
        if target and target not in targets
    }
    assert not missing, f"`make` targets cited but not in the Makefile: {sorted(missing)}"


def test_every_target_has_a_description():
    undescribed = sorted(name for name, description in makefile_targets().items() if not description)
    assert not undescribed, f"Makefile targets without a `## description`: {undescribed}"


@pytest.mark.skipif(shutil.which("make") is None, reason="no make on this machine")
def test_make_help_lists_every_target_with_its_description():
    result = subprocess.run(
        ["make", "--no-print-directory", "-s", "help"], cwd=REPO, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    listed = {}
    for line in result.stdout.splitlines():
        name, _, description = line.removeprefix("make ").partition(" ")
        listed[name] = description.strip()
    assert set(listed) == set(makefile_targets()), (
        f"make help lacks {sorted(set(makefile_targets()) - set(listed))}, "
        f"or lists what is no target: {sorted(set(listed) - set(makefile_targets()))}"
    )
    for name, description in makefile_targets().items():
        assert listed[name] == description, f"make help shows {name!r} as {listed[name]!r}"


def test_ci_runs_the_test_command_the_readme_gives():
    assert re.search(r"^make test$", _text(REPO / ".ci" / "run"), re.MULTILINE), (
        ".ci/run must run `make test`"
    )
    assert "make test " in _text(REPO / "README.md"), "the README must give `make test` as the test command"


# -- Variables and environment variables -----------------------------------------------------------


def test_every_variable_cited_is_a_setting():
    cited = set()
    for doc in DOCS:
        text = _text(doc)
        for table in re.findall(r"^\| Variable \|.*?(?=^[^|]|\Z)", text, re.MULTILINE | re.DOTALL):
            cited |= {(_rel(doc), name) for name in re.findall(r"^\| `(\w+)` \|", table, re.MULTILINE)}
        for pattern in (r"`(\w+)` Variable", r"Variable `(\w+)`"):
            cited |= {(_rel(doc), name) for name in re.findall(pattern, text)}
    cited |= {
        (doc, name)
        for doc, name in _cited(re.compile(r"^[a-z]+_\w+$"), in_blocks=False)
        if name.startswith(SETTING_PREFIXES)
    }
    unknown = sorted((doc, name) for doc, name in cited if name not in SETTINGS)
    assert not unknown, f"Variables cited but not in include/settings.py SETTINGS: {unknown}"


@cache
def code_and_config() -> str:
    """The text of every file of the repository except the docs: where an environment variable is used."""
    texts = []
    for folder, subfolders, files in os.walk(REPO):
        subfolders[:] = [name for name in subfolders if name not in STATE]
        for name in files:
            path = Path(folder, name)
            if path.suffix in {".md", ".png", ".jsonl", ".pyc"}:
                continue
            try:
                texts.append(path.read_text())
            except UnicodeDecodeError:
                continue
    return "\n".join(texts)


def test_every_environment_variable_cited_is_used_by_the_code():
    code = code_and_config()
    missing = sorted(
        {
            (doc, name)
            for doc, name in _cited(ENV_VAR, in_blocks=False)
            # A name ending in "_" is a prefix (`AIRFLOW__`, `BENCH_`): some variable must start with it.
            if name not in FOREIGN_ENV
            and not re.search(rf"\b{re.escape(name)}" + ("" if name.endswith("_") else r"\b"), code)
        }
    )
    assert not missing, f"environment variables cited but named nowhere in the code or config: {missing}"


# -- paths and test names --------------------------------------------------------------------------


@cache
def tracked_top_level() -> set[str]:
    return {path.name for path in REPO.iterdir()} - STATE


def _path_citations() -> list[tuple[str, str]]:
    """(doc, path) for every code span that names a file or folder of the repository."""
    cited = []
    for doc, span in _cited(re.compile(r"^\S+$"), in_blocks=False):
        path = span.split("::")[0].rstrip(".,:;")
        if path.split("/")[0] in tracked_top_level():
            cited.append((doc, path))
    return cited


def _exists(path: str) -> bool:
    path = re.split(r"[<{]", path)[0]  # `bench/results/<name>.jsonl`: the folder part must exist
    if "*" in path:
        return any(REPO.glob(path))
    return (REPO / path).exists() if path else True


def test_every_repository_path_cited_exists():
    missing = sorted({(doc, path) for doc, path in _path_citations() if not _exists(path)})
    assert not missing, f"repository paths cited but missing: {missing}"


@cache
def defined_tests() -> set[str]:
    names = set()
    for path in (REPO / "tests").rglob("test_*.py"):
        names |= set(re.findall(r"^(?:async )?def (test_\w+)", path.read_text(), re.MULTILINE))
    return names


def test_every_test_name_cited_exists():
    cited = {
        (doc, name)
        for doc, span in _cited(re.compile(r"^.+$"), in_blocks=False)
        for name in TEST_NAME.findall(span)
        if not span.endswith(".py") and f"{name}.py" not in span
    }
    missing = sorted((doc, name) for doc, name in cited if name not in defined_tests())
    assert not missing, f"test names cited but no such test function in tests/: {missing}"


def test_every_test_cited_with_its_file_is_in_that_file():
    wrong = []
    for doc, span in _cited(re.compile(r"^(\S+\.py)::(test_\w+)$"), in_blocks=False):
        path, name = span.split("::")
        if (REPO / path).exists() and not re.search(
            rf"^(?:async )?def {name}\b", (REPO / path).read_text(), re.MULTILINE
        ):
            wrong.append((doc, span))
    assert not wrong, f"tests cited in a file that does not define them: {wrong}"


# -- links -----------------------------------------------------------------------------------------


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading keeps its text
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


@cache
def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    result = set()
    for _, heading in HEADING.findall(FENCE.sub("", _text(path))):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else f"{base}-{count}")
    return result


def _links() -> list[tuple[Path, str]]:
    return [(doc, target) for doc in DOCS for target in LINK.findall(FENCE.sub("", _text(doc)))]


def test_every_relative_link_resolves():
    broken = []
    for doc, target in _links():
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        path = (doc.parent / file_part).resolve() if file_part else doc
        if not path.exists():
            broken.append((_rel(doc), target, "no such file"))
            continue
        if anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append((_rel(doc), target, f"no heading with anchor #{anchor} in {_rel(path)}"))
    assert not broken, f"broken links: {broken}"


def test_the_slugs_are_githubs():
    assert (
        slug("`deploy`: champion/challenger, promotion, rollback")
        == "deploy-championchallenger-promotion-rollback"
    )
    assert slug("Known Airflow 3.3.2 issues worked around") == "known-airflow-332-issues-worked-around"
    assert slug("`build_features` killed or retried") == "build_features-killed-or-retried"
    assert slug("Model server: FastAPI (`python -m serving`) against the old `http.server` server") == (
        "model-server-fastapi-python--m-serving-against-the-old-httpserver-server"
    )
