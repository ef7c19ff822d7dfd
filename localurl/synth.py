"""Synthesize the real CDK app (app.py) into a cloud assembly, as the CDK CLI does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# cdk.json's "app", as arguments of this interpreter.
DEFAULT_APP = ("app.py",)


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
) -> SynthesizedStack:
    # The CLI's protocol with the app: CDK_OUTDIR and CDK_CONTEXT_JSON in, a cloud assembly out.
    # Like the CLI, context from cdk.json comes first and the caller's (-c) overrides it.
    cdk_json = app_dir / "cdk.json"
    project_context = (
        json.loads(cdk_json.read_text()).get("context", {}) if cdk_json.exists() else {}
    )
    env = {
        **os.environ,
        "CDK_OUTDIR": str(outdir),
        "CDK_CONTEXT_JSON": json.dumps({**project_context, **context}),
        "CDK_DEFAULT_ACCOUNT": account,
        "CDK_DEFAULT_REGION": region,
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
    completed = subprocess.run(
        [sys.executable, *app],
        cwd=app_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if completed.returncode != 0:
        raise SynthError(f"cdk synth failed ({completed.returncode}):\n{completed.stderr[-4000:]}")
    return read_assembly(outdir)


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
