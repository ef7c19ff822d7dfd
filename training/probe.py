"""Load a model file in a child process first: a file that crashes xgboost (SIGSEGV on a
truncated UBJSON buffer or an out-of-range child index) then fails with a message instead of
killing the process that asked."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

# xgboost's loader, then a prediction on a row of zeros and a row of nulls (a corrupt tree
# crashes there, not at load).
_SCRIPT = """
import json, sys
from pathlib import Path
import numpy as np
import xgboost as xgb
raw = Path(sys.argv[1]).read_bytes()
booster = xgb.Booster()
try:
    booster.load_model(bytearray(raw))
except xgb.core.XGBoostError as exc:
    sys.exit(str(exc).strip().splitlines()[0])  # the reason; its C++ stack trace follows it
booster.set_param({"nthread": 1})
width = booster.num_features()
rows = np.zeros((2, width), dtype=np.float32)
rows[1] = np.nan
out = booster.inplace_predict(rows, validate_features=False)
print(json.dumps({
    "feature_names": booster.feature_names,
    "feature_types": booster.feature_types,
    "num_trees": booster.num_boosted_rounds(),
    "prediction_shape": list(out.shape),
}))
"""


class ModelProbeError(RuntimeError):
    """The model file does not load and predict in a fresh process; the message says how."""


@dataclass(frozen=True, kw_only=True)
class ProbeResult:
    feature_names: list[str] | None
    feature_types: list[str] | None
    num_trees: int
    prediction_shape: list[int]


def probe_model(path: Path, *, timeout: float = 60) -> ProbeResult:
    completed = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(path)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        check=False,
    )
    if completed.returncode < 0:
        name = signal.Signals(-completed.returncode).name
        raise ModelProbeError(
            f"{path}: loading and predicting with xgboost killed the process with {name} "
            f"(signal {-completed.returncode}): the file is truncated or corrupt (e.g. a tree's "
            "child index out of range); an in-process load would have crashed without a message"
        )
    if completed.returncode != 0:
        lines = [line for line in completed.stderr.strip().splitlines() if line.strip()]
        last = lines[-1] if lines else f"exit status {completed.returncode}"
        raise ModelProbeError(f"{path}: the model does not load: {last}")
    summary = json.loads(completed.stdout.strip().splitlines()[-1])
    return ProbeResult(**summary)
