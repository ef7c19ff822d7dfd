"""localurl's synth cache: the same inputs reuse the assembly, any changed input synthesizes again,
and a failed synth leaves nothing behind to reuse.

The app here is a stand-in for app.py that writes the smallest cloud assembly read_assembly
accepts and counts its runs: what is under test is the cache, not the CDK.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from localurl.synth import SynthError, synth

APP = """
import json, os, pathlib, sys
root = pathlib.Path(os.environ["CDK_OUTDIR"])
with open("../runs.log", "a") as runs:  # outside the project: not an input
    runs.write(os.environ["CDK_CONTEXT_JSON"] + "\\n")
if json.loads(os.environ["CDK_CONTEXT_JSON"]).get("fail"):
    root.mkdir(parents=True, exist_ok=True)
    (root / "manifest.json").write_text("half written")
    sys.exit("cdk context: fail")
root.mkdir(parents=True, exist_ok=True)
(root / "asset.1").mkdir(exist_ok=True)
(root / "asset.1" / "Dockerfile").write_text(pathlib.Path("Dockerfile").read_text())
(root / "Stack.template.json").write_text(json.dumps({"Resources": {}}))
(root / "Stack.assets.json").write_text(json.dumps(
    {"dockerImages": {"1": {"source": {"directory": "asset.1"}}}}))
(root / "manifest.json").write_text(json.dumps({"artifacts": {
    "Stack": {"type": "aws:cloudformation:stack", "dependencies": ["Stack.assets"],
              "properties": {"templateFile": "Stack.template.json", "stackName": "s"}},
    "Stack.assets": {"type": "cdk:asset-manifest", "properties": {"file": "Stack.assets.json"}},
}}))
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "app.py").write_text(APP)
    (root / "cdk.json").write_text(json.dumps({"context": {"flag": True}}))
    (root / "Dockerfile").write_text("FROM scratch\n")
    return root


def _synth(project: Path, out: Path, cache: Path, **context: object):
    return synth(
        outdir=out,
        context={"stackName": "s", **context},
        account="123456789012",
        region="eu-west-1",
        app_dir=project,
        cache_dir=cache,
    )


def _runs(project: Path) -> int:
    return len((project.parent / "runs.log").read_text().splitlines())


def test_same_inputs_reuse_the_assembly_when_cached(project, tmp_path):
    first = _synth(project, tmp_path / "one", tmp_path / "cache")
    second = _synth(project, tmp_path / "two", tmp_path / "cache")

    assert _runs(project) == 1
    assert second.assembly_dir == tmp_path / "two"
    assert second.template == first.template
    assert (second.image_asset_dir / "Dockerfile").read_text() == "FROM scratch\n"


@pytest.mark.parametrize("change", ["context", "project file", "dotfile", "cdk environment"])
def test_changed_input_synthesizes_again_when_cached(project, tmp_path, monkeypatch, change):
    _synth(project, tmp_path / "one", tmp_path / "cache")
    context: dict[str, object] = {}
    if change == "context":
        context = {"memorySize": "512"}
    elif change == "project file":
        (project / "Dockerfile").write_text("FROM scratch\nENV A=1\n")
    elif change == "dotfile":
        (project / ".dockerignore").write_text("*.md\n")
    else:
        monkeypatch.setenv("CDK_VALIDATION", "false")

    again = _synth(project, tmp_path / "two", tmp_path / "cache", **context)

    assert _runs(project) == 2
    if change == "project file":
        assert "ENV A=1" in (again.image_asset_dir / "Dockerfile").read_text()


def test_tool_state_is_not_an_input_when_cached(project, tmp_path):
    _synth(project, tmp_path / "one", tmp_path / "cache")
    for folder in (".tox", "node_modules", "cdk.out.x", "__pycache__"):
        (project / folder).mkdir()
        (project / folder / "state").write_text("changes every run")

    _synth(project, tmp_path / "two", tmp_path / "cache")

    assert _runs(project) == 1


def test_failed_synth_is_not_reused_when_cached(project, tmp_path):
    with pytest.raises(SynthError, match="cdk context: fail"):
        _synth(project, tmp_path / "one", tmp_path / "cache", fail=True)
    with pytest.raises(SynthError, match="cdk context: fail"):
        _synth(project, tmp_path / "two", tmp_path / "cache", fail=True)

    assert _runs(project) == 2
    assert not (tmp_path / "two" / "manifest.json").exists()


def test_no_cache_runs_the_app_every_time(project, tmp_path):
    _synth(project, tmp_path / "one", None)
    _synth(project, tmp_path / "two", None)

    assert _runs(project) == 2
