"""The supply chain's contract with GitHub, Dependabot and pre-commit, read from the repository.

Actions run as pinned commits, Dependabot watches every manifest, the PR gate runs on the Python it
names, and the pre-commit hook is the pinned ruff. (The schemas of the workflow and Dependabot
files are checked by the lint env's check-jsonschema.)
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import yaml
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
# `uses: owner/repo[/path]@<40 hex> # v1.2.3`: a SHA cannot be moved the way a tag can, and the
# comment is what Dependabot and a reviewer read the release from.
PINNED_USES = re.compile(
    r"^\s*(?:-\s+)?uses:\s*(?P<action>[\w.-]+/[\w./-]+)@(?P<sha>[0-9a-f]{40})"
    r"\s+#\s*(?P<version>v\d+\.\d+\.\d+)\s*$"
)
ANY_USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<target>\S+)")
NOT_MANIFEST_DIRS = {"node_modules", "cdk.out", "__pycache__"}


def _uses_lines() -> list[tuple[str, int, str]]:
    found = []
    for workflow in WORKFLOWS:
        for number, line in enumerate(workflow.read_text().splitlines(), start=1):
            match = ANY_USES.match(line)
            if match and not match["target"].startswith("./"):  # local actions are our own code
                found.append((workflow.name, number, line))
    return found


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _dev_pin(name: str) -> str:
    for line in (ROOT / "requirements-dev.txt").read_text().splitlines():
        if line.startswith(f"{name}=="):
            return line.split("==", 1)[1].split("#", 1)[0].strip()
    raise AssertionError(f"{name} is not pinned in requirements-dev.txt")


def test_every_action_is_pinned_to_a_commit_sha_with_its_release() -> None:
    uses = _uses_lines()
    assert uses, "no `uses:` found: the workflows moved or the pattern is wrong"
    unpinned = [
        f"{name}:{number}: {line.strip()}"
        for name, number, line in uses
        if not PINNED_USES.match(line)
    ]
    assert unpinned == [], "actions not pinned as `owner/repo@<sha> # vX.Y.Z`"


def test_each_action_release_is_one_commit_everywhere() -> None:
    """Two workflows naming the same release must run the same code (and vice versa)."""
    seen: dict[str, set[tuple[str, str]]] = {}
    for _, _, line in _uses_lines():
        match = PINNED_USES.match(line)
        if match:
            seen.setdefault(match["action"], set()).add((match["sha"], match["version"]))
    assert seen
    assert {action: pins for action, pins in seen.items() if len(pins) > 1} == {}


def _gate_job() -> dict[str, Any]:
    workflow = _yaml(ROOT / ".github" / "workflows" / "pr.yml")
    return dict(workflow["jobs"]["gate"])


def _image_python() -> str:
    """The Lambda image's Python, from the FROM line of handler/Dockerfile."""
    dockerfile = (ROOT / "handler" / "Dockerfile").read_text()
    match = re.search(r"^FROM\s+\S*/lambda/python:(\d+\.\d+)\b", dockerfile, re.MULTILINE)
    assert match, "handler/Dockerfile: no FROM .../lambda/python:X.Y line"
    return match[1]


def test_pr_gate_runs_on_the_oldest_supported_and_the_image_python() -> None:
    versions = _gate_job()["strategy"]["matrix"]["python-version"]
    requires = SpecifierSet(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    )
    (floor,) = (s.version for s in requires if s.operator == ">=")

    assert floor in versions
    assert _image_python() in versions
    assert all(requires.contains(f"{v}.0") for v in versions)


def test_pr_gate_puts_the_matrix_python_first_and_tox_uses_it() -> None:
    """The bug this guards against: a later setup-python step puts another `python3` first on PATH,
    and tox's base_python = python3 silently runs the gate on it."""
    steps = _gate_job()["steps"]
    setup_python = [
        i
        for i, step in enumerate(steps)
        if str(step.get("uses", "")).startswith("actions/setup-python@")
    ]
    (gate,) = [i for i, step in enumerate(steps) if "./dev gate" in str(step.get("run", ""))]

    assert len(setup_python) == 1, "one setup-python step: the last version it lists is python3"
    (index,) = setup_python
    assert index < gate
    listed = str(steps[index]["with"]["python-version"]).strip().splitlines()
    assert listed[-1].strip() == "${{ matrix.python-version }}"
    assert (
        steps[gate]["env"]["TOX_OVERRIDE"]
        == "testenv.base_python=python${{ matrix.python-version }}"
    )


def _manifest_dirs(*patterns: str) -> set[str]:
    dirs = set()
    for pattern in patterns:
        for path in ROOT.rglob(pattern):
            relative = path.relative_to(ROOT)
            if any(p.startswith(".") or p in NOT_MANIFEST_DIRS for p in relative.parts[:-1]):
                continue
            dirs.add("/" + relative.parent.as_posix() if relative.parent != Path() else "/")
    return dirs


def _dependabot_dirs(ecosystem: str) -> set[str]:
    config = _yaml(ROOT / ".github" / "dependabot.yml")
    dirs: set[str] = set()
    for update in config["updates"]:
        if update["package-ecosystem"] == ecosystem:
            dirs |= set(update.get("directories", [])) | (
                {update["directory"]} if "directory" in update else set()
            )
    return dirs


def test_dependabot_watches_every_manifest() -> None:
    pip_dirs = _manifest_dirs("requirements*.txt", "constraints.txt", "pyproject.toml")
    npm_dirs = _manifest_dirs("package.json")

    assert pip_dirs >= {"/", "/handler"}
    assert _dependabot_dirs("pip") >= pip_dirs
    assert _dependabot_dirs("npm") >= npm_dirs
    assert _dependabot_dirs("github-actions") == {"/"}  # Dependabot reads .github/workflows from /


def test_dependabot_keeps_exact_pins_exact() -> None:
    """`==` pins are bumped, never widened into ranges: no `widen`, nor `auto` (which may widen)."""
    config = _yaml(ROOT / ".github" / "dependabot.yml")
    strategies = {
        update["package-ecosystem"]: update.get("versioning-strategy", "auto")
        for update in config["updates"]
        if update["package-ecosystem"] in {"pip", "npm"}
    }
    assert set(strategies) == {"pip", "npm"}
    assert not {"auto", "widen", "lockfile-only"} & set(strategies.values())


def test_pre_commit_runs_the_pinned_ruff() -> None:
    config = _yaml(ROOT / ".pre-commit-config.yaml")
    (ruff,) = [repo for repo in config["repos"] if repo["repo"].endswith("/ruff-pre-commit")]

    assert ruff["rev"] == f"v{_dev_pin('ruff')}"
    assert {hook["id"] for hook in ruff["hooks"]} >= {"ruff-check", "ruff-format"}
