"""Handler overhead against the inplace_predict floor and a pandas tutorial handler, cold start,
and the size of the image's dependencies; prints one markdown table.

    cd /work/main && python -m bench.handler_bench [--quick]

Everything is measured in this one run, side by side and interleaved, so that the machine's
noise hits both sides of every ratio alike. Not a test: it reports, it does not assert.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
HANDLER_DIR = ROOT / "handler"
sys.path.insert(0, str(HANDLER_DIR))

from ml_handler.config import BUNDLED_MODEL  # noqa: E402
from ml_handler.model import load_model  # noqa: E402
from ml_handler.service import InferenceService  # noqa: E402

from localurl.image_stages import build_stage, parse_stages  # noqa: E402
from tests.unit import image_sim  # noqa: E402

SIZES = (1, 2, 100, 1000, 10000)
# handler / floor, per batch size; 100 rows has no target of its own.
LATENCY_TARGETS = {1000: 1.5, 10000: 1.7}
COLD_START_TARGET_S = 0.060
IMAGE_MB_TARGET = 10.0
SAMPLES = json.loads((ROOT / "tests" / "fixtures" / "samples.json").read_text())


class PandasHandler:
    """The tutorial handler: DataFrame from the JSON body, XGBRegressor.predict."""

    def __init__(self, model_path: Path) -> None:
        from xgboost import XGBRegressor

        # n_jobs=1 so that both sides use one thread, like the floor (BOOSTER_NTHREAD=1).
        self.model = XGBRegressor(n_jobs=1)
        self.model.load_model(model_path)

    def __call__(self, event: dict, context: object) -> dict:
        import pandas as pd

        body = event["body"]
        if event.get("isBase64Encoded"):
            body = base64.b64decode(body)
        frame = pd.DataFrame(json.loads(body))
        predictions = self.model.predict(frame)
        return {
            "statusCode": 200,
            "headers": {"content-type": "application/json"},
            "body": json.dumps(predictions.tolist()),
        }


def make_records(rows: int, seed: int = 7) -> list[dict[str, float]]:
    """Realistic requests: the two samples, jittered and rounded like lab measurements."""
    rng = np.random.default_rng(seed)
    records = []
    for index in range(rows):
        base = SAMPLES[index % len(SAMPLES)]
        record = {}
        for name, value in base.items():
            if name.startswith("color_"):
                record[name] = value
            else:
                record[name] = float(f"{value * rng.uniform(0.9, 1.1):.4g}")
        records.append(record)
    return records


def event_for(body: str) -> dict:
    return {
        "version": "2.0",
        "headers": {"content-type": "application/json"},
        "requestContext": {"http": {"method": "POST"}, "requestId": "bench"},
        "body": body,
        "isBase64Encoded": False,
    }


@dataclass
class Timings:
    samples: dict[str, list[float]]

    def median(self, name: str) -> float:
        return statistics.median(self.samples[name])


def interleaved(candidates: dict[str, Callable[[], object]], rounds: int) -> Timings:
    """Each round calls every candidate once, in a rotating order."""
    names = list(candidates)
    samples: dict[str, list[float]] = {name: [] for name in names}
    clock = time.perf_counter
    for round_index in range(rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            call = candidates[name]
            started = clock()
            call()
            samples[name].append(clock() - started)
    return Timings(samples)


def rounds_for(call: Callable[[], object], budget_s: float) -> int:
    started = time.perf_counter()
    call()
    once = time.perf_counter() - started
    return max(15, min(3000, int(budget_s / max(once, 1e-6))))


@dataclass(frozen=True)
class Latency:
    rows: int
    floor: float
    handler: float  # the xgboost path (MODEL_PATH=model.ubj)
    compiled: float  # the image's path: the builder stage's model.so through ctypes
    pandas: float
    pandas_floor: float


def compiled_library() -> Path:
    """The image's model.so, from the builder stage the simulated image replays (cached)."""
    *builders, _final = parse_stages((HANDLER_DIR / "Dockerfile").read_text())
    sent = image_sim.context_files(HANDLER_DIR)
    (builder,) = builders
    stage = build_stage(builder, context=HANDLER_DIR, sent=sent, cache_dir=image_sim.CACHE_DIR)
    return stage / "build" / "model.so"


def latency(quick: bool) -> list[Latency]:
    model = load_model(BUNDLED_MODEL, nthread=1)
    service = InferenceService(model=model, max_rows=max(SIZES))
    compiled = InferenceService(
        model=load_model(compiled_library(), nthread=1), max_rows=max(SIZES)
    )
    baseline = PandasHandler(BUNDLED_MODEL)
    names = model.feature_names
    results: list[Latency] = []
    budget = 0.4 if quick else 2.0
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        for rows in SIZES:
            records = make_records(rows)
            matrix = np.array([[r[n] for n in names] for r in records], dtype=np.float32)
            event = event_for(json.dumps(records))
            floor = model.booster.inplace_predict
            ours = service.handle(event, None)
            theirs = baseline(event, None)
            # The handler must answer what the floor computes, or the timing means nothing.
            expected = floor(matrix, validate_features=False)
            assert np.array_equal(np.array(json.loads(ours["body"]), dtype=np.float32), expected)
            assert compiled.handle(event, None)["body"] == ours["body"]
            assert np.allclose(json.loads(theirs["body"]), expected, rtol=1e-6)
            floor_call = partial(floor, matrix, validate_features=False)
            ours_call = partial(service.handle, event, None)
            compiled_call = partial(compiled.handle, event, None)
            pandas_call = partial(baseline, event, None)
            # Two interleaved pairings, each ratio against the floor timed beside it: pandas
            # thrashes the caches, and must not slow the floor that our ratio divides by.
            ours_pair = interleaved(
                {"floor": floor_call, "handler": ours_call, "compiled": compiled_call},
                rounds_for(ours_call, budget),
            )
            pandas_pair = interleaved(
                {"floor": floor_call, "pandas": pandas_call}, rounds_for(pandas_call, budget / 2)
            )
            results.append(
                Latency(
                    rows=rows,
                    floor=ours_pair.median("floor"),
                    handler=ours_pair.median("handler"),
                    compiled=ours_pair.median("compiled"),
                    pandas=pandas_pair.median("pandas"),
                    pandas_floor=pandas_pair.median("floor"),
                )
            )
    return results


OURS_COLD = "import ml_handler.app"
PANDAS_COLD = (
    "import pandas as pd\n"
    "from xgboost import XGBRegressor\n"
    "model = XGBRegressor()\n"
    "model.load_model({path!r})\n"
)


def cold_start(quick: bool) -> dict[str, float]:
    """Fresh processes to a loaded model: the image's (the simulated image's task root, the
    image's Python 3.12, python -I -S: only what the image holds, compiled model.so), today's
    xgboost handler (MODEL_PATH=model.ubj) and the tutorial's, both in this environment."""
    python = image_sim.find_python((3, 12))
    if python is None:
        raise SystemExit("cold start needs Python 3.12 (pyenv) for the image's task root")
    with tempfile.TemporaryDirectory() as scratch:
        image = image_sim.build_image(HANDLER_DIR, Path(scratch) / "task", python)
        bootstrap = f"import sys; sys.path.insert(0, {str(image.task_root)!r}); {OURS_COLD}"
        xgb_boot = f"import sys; sys.path.insert(0, {str(HANDLER_DIR)!r}); {OURS_COLD}"
        commands = {
            "compiled": ([python, "-I", "-S", "-B", "-c", bootstrap], image.task_root),
            "xgboost": ([sys.executable, "-B", "-c", xgb_boot], ROOT),
            "pandas": ([sys.executable, "-c", PANDAS_COLD.format(path=str(BUNDLED_MODEL))], ROOT),
        }
        envs = {
            "compiled": image_sim.runtime_env(image),
            "xgboost": {**os.environ, "MODEL_PATH": str(BUNDLED_MODEL), "BOOSTER_NTHREAD": "1"},
            "pandas": None,
        }
        runs: dict[str, list[float]] = {name: [] for name in commands}
        repetitions = 3 if quick else 9
        for index in range(repetitions + 1):
            order = list(commands)[:: 1 if index % 2 else -1]
            for name in order:
                argv, cwd = commands[name]
                started = time.perf_counter()
                subprocess.run(argv, cwd=cwd, env=envs[name], check=True, capture_output=True)
                if index:  # the first round only warms the page cache
                    runs[name].append(time.perf_counter() - started)
    return {
        **{name: statistics.median(values) for name, values in runs.items()},
        **{f"{name}_min": min(values) for name, values in runs.items()},
        **{f"{name}_max": max(values) for name, values in runs.items()},
    }


def image_deps_mb() -> tuple[float, str]:
    """du of the pip --target layer the Dockerfile builds, with the image's Python if present."""
    dockerfile = image_sim.parse_dockerfile((HANDLER_DIR / "Dockerfile").read_text())
    version = dockerfile.python_version
    python = (image_sim.find_python(version) if version else None) or sys.executable
    with tempfile.TemporaryDirectory() as scratch:
        image = image_sim.build_image(HANDLER_DIR, Path(scratch) / "task", python)
        (layer,) = image.layers
        return image_sim.directory_size_mb(layer), image_sim.python_version_of(python)


def verdict(ratio: float, target: float) -> str:
    return "PASS" if ratio <= target else "MISS"


def fmt_time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds: a smoke run")
    parser.add_argument("--latency-only", action="store_true", help="skip cold start and size")
    args = parser.parse_args(argv)

    latencies = latency(args.quick)
    print(
        "| measurement | floor | compiled | compiled / floor | target | result "
        "| xgboost handler | xgboost / floor | pandas | pandas / floor |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in latencies:
        ratio = row.compiled / row.floor
        target = LATENCY_TARGETS.get(row.rows)
        print(
            f"| latency, {row.rows} row{'s' if row.rows > 1 else ''} | {fmt_time(row.floor)} "
            f"| {fmt_time(row.compiled)} | {ratio:.3f} | {f'≤ {target}' if target else '—'} "
            f"| {verdict(ratio, target) if target else '—'} "
            f"| {fmt_time(row.handler)} | {row.handler / row.floor:.3f} "
            f"| {fmt_time(row.pandas)} | {row.pandas / row.pandas_floor:.2f} |"
        )
    if not args.latency_only:
        cold = cold_start(args.quick)
        spans = {
            name: f"{fmt_time(cold[name])} ({fmt_time(cold[name + '_min'])}-"
            f"{fmt_time(cold[name + '_max'])})"
            for name in ("compiled", "xgboost", "pandas")
        }
        print(
            f"| cold start (fresh process, import + load) | — | {spans['compiled']} "
            f"| {cold['xgboost'] / cold['compiled']:.1f}x below xgboost "
            f"| ≤ {fmt_time(COLD_START_TARGET_S)} "
            f"| {verdict(cold['compiled'], COLD_START_TARGET_S)} | {spans['xgboost']} | — "
            f"| {spans['pandas']} | — |"
        )
        size_mb, image_python = image_deps_mb()
        print(
            f"| image deps (pip --target, Python {image_python}) | — | {size_mb:.1f} MB | — "
            f"| ≤ {IMAGE_MB_TARGET:.0f} MB | {verdict(size_mb, IMAGE_MB_TARGET)} | — | — | — | — |"
        )
    print()
    print(
        f"Medians; latency interleaved per round (floor = Booster.inplace_predict on a prebuilt "
        f"float32 array, nthread=1; compiled / xgboost handler = InferenceService.handle on "
        f"model.so / model.ubj, records body, JSON in and out, log line to /dev/null, "
        f"interleaved with the floor; pandas = DataFrame + XGBRegressor(n_jobs=1).predict, "
        f"against its own interleaved floor); cold start median (min-max) over repeats: compiled "
        f"in the image's task root with Python 3.12, xgboost/pandas with "
        f"{sys.version.split()[0]}."
    )


if __name__ == "__main__":
    main()
