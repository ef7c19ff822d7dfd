"""The compiled path at run time: a fresh handler process serving model_compiler's library
imports neither numpy nor xgboost (nor scipy), and answers like the xgboost path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.unit.events import post
from tests.unit.small_model import FEATURES

HANDLER_DIR = Path(__file__).resolve().parents[2] / "handler"
HEAVY = ("numpy", "xgboost", "scipy", "pandas")
SCRIPT = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import ml_handler.app as app
event = json.loads(sys.argv[2])
response = app.lambda_handler(event, None)
heavy = sorted(name for name in sys.modules if name.split(".")[0] in {HEAVY})
sys.stderr.write(json.dumps({{"response": response, "heavy": heavy}}))
"""


def run_handler(model_path: Path, event: dict) -> dict:
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            SCRIPT.format(HEAVY=set(HEAVY)),
            str(HANDLER_DIR),
            json.dumps(event),
        ],
        env={"MODEL_PATH": str(model_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return json.loads(completed.stderr)


def test_compiled_handler_imports_no_numpy_or_xgboost(small_library, small_model_paths):
    event = post([[1.5, None, -3.0, 20.0, 1], [None] * len(FEATURES)])
    compiled = run_handler(small_library, event)
    assert compiled["heavy"] == []
    assert compiled["response"]["statusCode"] == 200
    # The xgboost path in the same harness does import them: the check above can fail.
    reference = run_handler(small_model_paths["ubj"], event)
    assert "numpy" in reference["heavy"]
    assert "xgboost" in reference["heavy"]
    assert compiled["response"] == reference["response"]
