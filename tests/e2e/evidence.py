"""What a failing AWS night keeps: written before teardown deletes the stack and its log group.

The folder (E2E_EVIDENCE_DIR; the nightly's e2e-evidence/, default cdk.out.e2e/evidence/) is
uploaded by the nightly workflow when the job fails or is cancelled: the CDK CLI's output
(written as it runs), the stack's events, the function's log events, the base image digest the
image was built from.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

# Enough for the nightly's few dozen invocations; a runaway log is cut, not fetched forever.
MAX_LOG_EVENTS = 5000


def stack_folder(root: Path, stack_name: str) -> Path:
    folder = root / stack_name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def save_stack_evidence(*, cfn: Any, logs: Any, stack_name: str, folder: Path) -> None:
    """Stack events and the log events of every log group the stack holds. Never raises: an
    error is written down instead, so that teardown always follows."""
    try:
        _write(folder / "stack-events.json", _stack_events(cfn, stack_name))
        groups = [
            r["PhysicalResourceId"]
            for page in cfn.get_paginator("list_stack_resources").paginate(StackName=stack_name)
            for r in page["StackResourceSummaries"]
            if r["ResourceType"] == "AWS::Logs::LogGroup" and r.get("PhysicalResourceId")
        ]
        for group in groups:
            _write(folder / f"log-events-{_safe(group)}.json", _log_events(logs, group))
    except Exception as exc:  # noqa: BLE001 - evidence is best effort, teardown is not
        (folder / "evidence-error.txt").write_text(f"{type(exc).__name__}: {exc}\n")


def save_base_image_digest(*, docker: str, dockerfile: Path, folder: Path) -> dict[str, Any]:
    """Pull every base image of `dockerfile` fresh (its current tag) and record the digest the
    build will then use: `docker build` takes the local image it finds."""
    record: dict[str, Any] = {}
    for image in base_images(dockerfile):
        subprocess.run([docker, "pull", image], check=True, timeout=15 * 60)
        inspected = subprocess.run(
            [docker, "image", "inspect", "--format", "{{json .RepoDigests}}", image],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )
        record[image] = json.loads(inspected.stdout)
    _write(folder / "base-image-digests.json", record)
    return record


def base_images(dockerfile: Path) -> list[str]:
    """The external images the Dockerfile builds FROM (not its own stages), in order."""
    stages: set[str] = set()
    images: list[str] = []
    for line in dockerfile.read_text().splitlines():
        match = re.match(r"\s*FROM\s+(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?", line, re.IGNORECASE)
        if not match:
            continue
        if match[1] not in stages and match[1] not in images:
            images.append(match[1])
        if match[2]:
            stages.add(match[2])
    return images


def _stack_events(cfn: Any, stack_name: str) -> list[dict[str, Any]]:
    return [
        event
        for page in cfn.get_paginator("describe_stack_events").paginate(StackName=stack_name)
        for event in page["StackEvents"]
    ]


def _log_events(logs: Any, group: str) -> dict[str, Any]:
    events: list[dict[str, Any]] = []
    for page in logs.get_paginator("filter_log_events").paginate(logGroupName=group):
        events.extend(page["events"])
        if len(events) >= MAX_LOG_EVENTS:
            return {"logGroupName": group, "truncated": True, "events": events[:MAX_LOG_EVENTS]}
    return {"logGroupName": group, "truncated": False, "events": events}


def _write(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1, default=str))


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name).strip("_")
