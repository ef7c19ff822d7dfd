"""Synthesize the real CDK app (app.py) into a cloud assembly, as the CDK CLI does."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# cdk.json's "app", as arguments of this interpreter.
DEFAULT_APP = ("app.py",)


# A synth is a function of the project's files, the context, the target account and region, the
# CDK_* environment and the CDK libraries: the same inputs give the same assembly, so it is kept by
# content and copied. The demo after the gate's contract layer, or a second `./dev demo`, skips
# ~6 s of Python, Node and jsii start-up.
DEFAULT_CACHE_DIR = Path(tempfile.gettempdir()) / "cdk-ml-lambda-synth"
_CDK_LIBRARIES = ("aws-cdk-lib", "constructs", "jsii")
# Folders that never reach a synth: tool state, caches, outputs.
_NOT_INPUTS = {"node_modules", "mutants", "mutation-report", "build", "__pycache__"}


class SynthError(RuntimeError):
    pass


@dataclass(frozen=True, kw_only=True)
class SynthesizedStack:
    stack_name: str
    template: dict[str, Any]
    assembly_dir: Path
    # The staged image asset: handler/ as filtered by .dockerignore, i.e. the build context.
    image_asset_dir: Path


def synth(
    *,
    outdir: Path,
    context: dict[str, str],
    account: str,
    region: str,
    app_dir: Path = PROJECT_ROOT,
    app: Sequence[str] = DEFAULT_APP,
    cache_dir: Path | None = DEFAULT_CACHE_DIR,
) -> SynthesizedStack:
    """`cdk synth` as the CLI runs the app; `cache_dir=None` always runs it."""
    # The CLI's protocol with the app: CDK_OUTDIR and CDK_CONTEXT_JSON in, a cloud assembly out.
    # Like the CLI, context from cdk.json comes first and the caller's (-c) overrides it.
    cdk_json = app_dir / "cdk.json"
    project_context = (
        json.loads(cdk_json.read_text()).get("context", {}) if cdk_json.exists() else {}
    )
    env = {
        **os.environ,
        "CDK_CONTEXT_JSON": json.dumps({**project_context, **context}),
        "CDK_DEFAULT_ACCOUNT": account,
        "CDK_DEFAULT_REGION": region,
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
    if cache_dir is None:
        _run_app(outdir=outdir, env=env, app_dir=app_dir, app=app)
        return read_assembly(outdir)
    key = _cache_key(env=env, app_dir=app_dir, app=app)
    cache_dir.mkdir(parents=True, exist_ok=True)
    cached = cache_dir / key
    with FileLock(str(cache_dir / f"{key}.lock")):
        if not (cached / "manifest.json").exists():
            shutil.rmtree(cached, ignore_errors=True)
            _run_app(outdir=cached, env=env, app_dir=app_dir, app=app)
    shutil.copytree(cached, outdir, dirs_exist_ok=True)
    return read_assembly(outdir)


def _run_app(*, outdir: Path, env: dict[str, str], app_dir: Path, app: Sequence[str]) -> None:
    completed = subprocess.run(
        [sys.executable, *app],
        cwd=app_dir,
        env={**env, "CDK_OUTDIR": str(outdir)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if completed.returncode != 0:
        shutil.rmtree(outdir, ignore_errors=True)  # no half-written assembly is ever reused
        raise SynthError(f"cdk synth failed ({completed.returncode}):\n{completed.stderr[-4000:]}")


def _cache_key(*, env: dict[str, str], app_dir: Path, app: Sequence[str]) -> str:
    digest = hashlib.sha256()
    inputs = {
        "app": list(app),
        "python": sys.version,
        "libraries": {name: importlib.metadata.version(name) for name in _CDK_LIBRARIES},
        "env": {name: value for name, value in sorted(env.items()) if name.startswith("CDK_")},
    }
    digest.update(json.dumps(inputs, sort_keys=True).encode())
    for path in _input_files(app_dir):
        digest.update(path.relative_to(app_dir).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:32]


def _input_files(folder: Path) -> Iterator[Path]:
    """Every file the app could read: the project less tool state, caches and outputs."""
    for entry in sorted(folder.iterdir()):
        if entry.is_symlink():
            continue
        if entry.is_dir():
            if entry.name.startswith(".") or entry.name.startswith("cdk.out"):
                continue
            if entry.name not in _NOT_INPUTS:
                yield from _input_files(entry)
        elif entry.is_file():
            yield entry


def read_assembly(outdir: Path) -> SynthesizedStack:
    """The one stack of a cloud assembly (from `cdk synth` or `cdk deploy --output`)."""
    manifest = json.loads((outdir / "manifest.json").read_text())
    stacks = [
        (artifact_id, artifact)
        for artifact_id, artifact in manifest["artifacts"].items()
        if artifact["type"] == "aws:cloudformation:stack"
    ]
    if len(stacks) != 1:
        raise SynthError(f"expected one stack in the app, found {len(stacks)}")
    artifact_id, artifact = stacks[0]
    properties = artifact["properties"]
    template = json.loads((outdir / properties["templateFile"]).read_text())
    assets_file = next(
        manifest["artifacts"][dep]["properties"]["file"]
        for dep in artifact.get("dependencies", [])
        if manifest["artifacts"][dep]["type"] == "cdk:asset-manifest"
    )
    assets = json.loads((outdir / assets_file).read_text())
    images = list(assets.get("dockerImages", {}).values())
    if len(images) != 1:
        raise SynthError(f"expected one image asset, found {len(images)}")
    return SynthesizedStack(
        stack_name=properties.get("stackName", artifact_id),
        template=template,
        assembly_dir=outdir,
        image_asset_dir=outdir / images[0]["source"]["directory"],
    )
