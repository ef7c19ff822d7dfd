"""The compiler, fuzzed: generated models (fuzz.models) compiled as the image compiles them and
compared bit for bit with xgboost's Booster.inplace_predict on rows on split thresholds, one
float32 ulp either side, and NaN (the always-missing feature among them).
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path

from fuzz import library as lib
from fuzz import models, targets

# The image's build: model_compiler's own flags, nothing added.
IMAGE_BUILD = lib.Toolchain(cc="cc", cflags=(), preload="")
ROWS_PER_MODEL = 2000


def check_model(shape: models.ModelShape, *, seed: int, rows: int, work_dir: Path) -> int:
    """Compile one generated model and compare it with xgboost; returns the rows compared."""
    rng = random.Random(seed)
    model = models.generate_model(shape, seed=seed)
    path = lib.build_library(model, IMAGE_BUILD, work_dir=work_dir)
    compiled = lib.FuzzedLibrary(path, models.feature_names(shape.features))
    table = models.rows_on_thresholds(
        model, features=shape.features, missing_feature=shape.missing_feature, rng=rng, rows=rows
    )
    import numpy as np

    matrix = np.array(table, dtype=np.float32).reshape(rows, shape.features)
    ours = np.frombuffer(compiled.predict(matrix.tobytes()), dtype=np.float32)
    try:
        targets.check_predictions(targets.load_booster(model), matrix, ours)
    except targets.Disagreement as exc:
        raise targets.Disagreement(f"{shape} seed {seed}: {exc}") from None
    return rows


def main(*, count: int, seed: int, max_trees: int) -> int:
    rng = random.Random(seed)
    failures = 0
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        for index in range(count):
            shape = models.random_shape(rng, max_trees=max_trees)
            model_seed = rng.getrandbits(32)
            try:
                compared = check_model(
                    shape, seed=model_seed, rows=ROWS_PER_MODEL, work_dir=Path(scratch)
                )
            except targets.Disagreement as exc:
                failures += 1
                print(f"DISAGREEMENT model {index}: {exc}", flush=True)
                continue
            print(f"model {index}: {shape} seed {model_seed}: {compared} rows agree", flush=True)
    elapsed = time.perf_counter() - started
    print(f"models: {count} compiled, {failures} disagreements ({elapsed:.0f} s)")
    return 1 if failures else 0
