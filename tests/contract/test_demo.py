"""The README's first command: the demo deploys the app locally and prints the predictions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ml_handler.model import load_model
from ml_handler.service import InferenceService


def test_demo_prints_the_handlers_predictions_for_the_samples(
    project_root: Path, bundled_model_path: Path, samples: list[dict[str, float]]
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "localurl", "demo"],
        cwd=project_root,
        env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    service = InferenceService(model=load_model(bundled_model_path), max_rows=10)
    expected = json.loads(
        service.handle(
            {
                "requestContext": {"http": {"method": "POST"}, "requestId": "demo"},
                "headers": {"content-type": "application/json"},
                "body": json.dumps(samples),
                "isBase64Encoded": False,
            },
            None,
        )["body"]
    )
    assert json.loads(result.stdout) == expected
    assert "AuthType AWS_IAM" in result.stderr
    # The demo signs with temporary credentials: none of them may reach the terminal.
    assert "ASIA" not in result.stdout + result.stderr
    assert "SecretAccessKey" not in result.stdout + result.stderr
