"""Run a CDK app unchanged, then give its image assets a per-run tag, so the image is rebuilt.

`python -m tests.e2e.fresh_image NONCE APP_ARG...` (the CDK CLI's --app). The pinned CLI skips
`docker build` and `push` when the asset's tag (a hash of the build context) already exists in
ECR: from the second night on, a change in the base image's moving tag, dnf or PyPI would only
surface at the next handler change. Suffixing the tag with the run's nonce (in the asset
manifest and in the template's ImageUri alike) makes the tag new every night, so the CLI builds
from the base image's current tag and pushes; the app's code and the image's contents are
exactly the product's.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

# For targets: `[sys.executable, "-m", APP_MODULE, nonce, *app]` is the wrapped app.
APP_MODULE = "tests.e2e.fresh_image"


def nonce_tag(tag: str, nonce: str) -> str:
    clean = re.sub(r"[^A-Za-z0-9_.-]", "-", nonce)[:40]
    return f"{tag}-e2e{clean}"


def retag_assembly(outdir: Path, nonce: str) -> dict[str, str]:
    """Suffix every image asset's tag in `outdir`; returns {old tag: new tag}."""
    renamed: dict[str, str] = {}
    for assets_file in outdir.glob("*.assets.json"):
        assets = json.loads(assets_file.read_text())
        for image in assets.get("dockerImages", {}).values():
            for destination in image["destinations"].values():
                old = destination["imageTag"]
                destination["imageTag"] = renamed.setdefault(old, nonce_tag(old, nonce))
        assets_file.write_text(json.dumps(assets, indent=1))
    for template_file in outdir.glob("*.template.json"):
        text = template_file.read_text()
        for old, new in renamed.items():
            text = text.replace(f":{old}", f":{new}")
        template_file.write_text(text)
    return renamed


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: python -m tests.e2e.fresh_image NONCE APP_ARG...", file=sys.stderr)
        return 2
    nonce, app = argv[0], argv[1:]
    completed = subprocess.run([sys.executable, *app], check=False)
    if completed.returncode != 0:
        return completed.returncode
    renamed = retag_assembly(Path(os.environ["CDK_OUTDIR"]), nonce)
    if not renamed:
        print("fresh_image: the app has no image asset to retag", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
