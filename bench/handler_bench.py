"""The compiled handler against the inplace_predict floor and a pandas tutorial handler, cold
start, and the size of the image's dependencies; prints one markdown table.

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
import xgboost as xgb

ROOT = Path(__file__).resolve().parents[1]
HANDLER_DIR = ROOT / "handler"
sys.path.insert(0, str(HANDLER_DIR))

from ml_handler.compiled_model import load_compiled  # noqa: E402
from ml_handler.config import BUNDLED_MODEL  # noqa: E402
from ml_handler.service import InferenceService  # noqa: E402

from bench.timing import fmt, interleaved  # noqa: E402
from localurl.image import (  # noqa: E402
    Image,
    build_image,
    build_stage,
    context_files,
    find_python,
    python_version,
    read_dockerfile,
)

SIZES = (1, 2, 100, 1000, 10000)
# handler / floor, per batch size; 100 rows has no target of its own.
LATENCY_TARGETS = {1000: 1.5, 10000: 1.7}
# Absolute targets (seconds) for the compiled handler, where a ratio to xgboost says little.
ABSOLUTE_TARGETS_S = {1: 50e-6}
# Fresh interpreter to first POST answered, as a multiple of a bare `python -I -S -B -c pass`.
COLD_START_RATIO_TARGET = 3.0
IMAGE_MB_TARGET = 10.0
SAMPLES = json.loads((ROOT / "data" / "samples.json").read_text())


class PandasHandler:
    """The tutorial handler: DataFrame from the JSON body, XGBRegressor.predict."""

    def __init__(self, model_path: str) -> None:
        from xgboost import XGBRegressor

        # n_jobs=1 so that both sides use one thread, like the floor (nthread=1).
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


def rounds_for(call: Callable[[], object], budget_s: float) -> int:
    started = time.perf_counter()
    call()
    once = time.perf_counter() - started
    return max(15, min(3000, int(budget_s / max(once, 1e-6))))


@dataclass(frozen=True)
class Latency:
    rows: int
    floor: float
    compiled: float  # the image's path: the builder stage's model.so through ctypes
    # The same, called back to back: a warm execution environment's caches, as consecutive
    # requests find them (interleaving with the floor evicts the library's trees from cache).
    compiled_alone: float
    pandas: float
    pandas_floor: float


def compiled_library() -> Path:
    """The image's model.so, from the builder stage every image replay shares (cached)."""
    (builder,) = read_dockerfile(HANDLER_DIR).builders
    stage = build_stage(builder, context=HANDLER_DIR, sent=context_files(HANDLER_DIR))
    return stage / "build" / "model.so"


def image_for(python: str, scratch: str) -> Image:
    return build_image(HANDLER_DIR, Path(scratch) / "task", python=python)


def latency(quick: bool) -> list[Latency]:
    booster = xgb.Booster(model_file=BUNDLED_MODEL)
    booster.set_param({"nthread": 1})
    compiled = InferenceService(model=load_compiled(compiled_library()), max_rows=max(SIZES))
    baseline = PandasHandler(BUNDLED_MODEL)
    names = booster.feature_names or []
    results: list[Latency] = []
    budget = 0.4 if quick else 2.0
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        for rows in SIZES:
            records = make_records(rows)
            matrix = np.array([[r[n] for n in names] for r in records], dtype=np.float32)
            event = event_for(json.dumps(records))
            floor = booster.inplace_predict
            ours = compiled.handle(event, None)
            theirs = baseline(event, None)
            # The handler must answer what the floor computes, or the timing means nothing.
            expected = floor(matrix, validate_features=False)
            assert np.array_equal(np.array(json.loads(ours["body"]), dtype=np.float32), expected)
            assert np.allclose(json.loads(theirs["body"]), expected, rtol=1e-6)
            floor_call = partial(floor, matrix, validate_features=False)
            compiled_call = partial(compiled.handle, event, None)
            pandas_call = partial(baseline, event, None)
            # Two interleaved pairings, each ratio against the floor timed beside it: pandas
            # thrashes the caches, and must not slow the floor that our ratio divides by.
            ours_pair = interleaved(
                {"floor": floor_call, "compiled": compiled_call},
                rounds_for(compiled_call, budget),
            )
            pandas_pair = interleaved(
                {"floor": floor_call, "pandas": pandas_call}, rounds_for(pandas_call, budget / 2)
            )
            results.append(
                Latency(
                    rows=rows,
                    floor=ours_pair.median("floor"),
                    compiled=ours_pair.median("compiled"),
                    compiled_alone=interleaved(
                        {"compiled": compiled_call}, rounds_for(compiled_call, budget / 2)
                    ).median("compiled"),
                    pandas=pandas_pair.median("pandas"),
                    pandas_floor=pandas_pair.median("floor"),
                )
            )
    return results


# To the first POST answered: init (imports, model load) and one plain request, as a cold start.
OURS_COLD = (
    "import ml_handler.app as app\n"
    "answer = app.lambda_handler({event!r}, None)\n"
    "assert answer['statusCode'] == 200, answer\n"
)
PANDAS_COLD = (
    "import pandas as pd\n"
    "from xgboost import XGBRegressor\n"
    "model = XGBRegressor()\n"
    "model.load_model({path!r})\n"
)


def image_python() -> str:
    version = read_dockerfile(HANDLER_DIR).python_version
    python = find_python(version) if version else None
    if python is None:
        raise SystemExit(f"this measurement needs the image's Python {version} (pyenv)")
    return python


def cold_start(quick: bool) -> dict[str, float]:
    """Fresh processes: the image's to its first POST answered (the image replayed into a task
    root for the image's Python, python -I -S: only what the image holds, compiled model.so),
    the tutorial's to a loaded model (in this environment)."""
    python = image_python()
    with tempfile.TemporaryDirectory() as scratch:
        image = image_for(python, scratch)
        event = event_for(json.dumps(SAMPLES))
        bootstrap = (
            f"import sys; sys.path.insert(0, {str(image.task_root)!r})\n"
            + OURS_COLD.format(event=event)
        )
        commands = {
            "python": ([python, "-I", "-S", "-B", "-c", "pass"], image.task_root),
            "compiled": ([python, "-I", "-S", "-B", "-c", bootstrap], image.task_root),
            "pandas": ([sys.executable, "-c", PANDAS_COLD.format(path=str(BUNDLED_MODEL))], ROOT),
        }
        envs = {"python": image.process_env(), "compiled": image.process_env(), "pandas": None}
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


def json_choice(quick: bool) -> list[tuple[str, float, float]]:
    """orjson against the standard library's json, for the image: what importing each adds to
    a fresh image process (Python 3.12, the image's orjson), and loads() per batch size here.
    Returns (measurement, orjson seconds, json seconds)."""
    import orjson

    python = image_python()
    rows: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory() as scratch:
        image = image_for(python, scratch)
        # What the handler imports anyway (ctypes, array, struct...) first: the marginal cost.
        base = f"import sys; sys.path.insert(0, {str(image.task_root)!r}); import ctypes, array"
        commands = {
            "none": f"{base}; pass",
            "orjson": f"{base}; import orjson",
            "json": f"{base}; import json",
        }
        runs: dict[str, list[float]] = {name: [] for name in commands}
        repetitions = 5 if quick else 15
        for index in range(repetitions + 1):
            for name in list(commands)[:: 1 if index % 2 else -1]:
                argv = [python, "-I", "-S", "-B", "-c", commands[name]]
                started = time.perf_counter()
                subprocess.run(argv, cwd=image.task_root, check=True, capture_output=True)
                if index:
                    runs[name].append(time.perf_counter() - started)
    floor = statistics.median(runs["none"])
    rows.append(
        (
            "import, fresh image process",
            statistics.median(runs["orjson"]) - floor,
            statistics.median(runs["json"]) - floor,
        )
    )
    budget = 0.3 if quick else 1.5
    for size in SIZES:
        body = json.dumps(make_records(size))
        calls: dict[str, Callable[[], object]] = {
            "orjson": partial(orjson.loads, body),
            "json": partial(json.loads, body),
        }
        assert calls["orjson"]() == calls["json"](), "the parsers disagree on the body"
        timings = interleaved(calls, rounds_for(calls["json"], budget))
        rows.append((f"loads, {size} rows", timings.median("orjson"), timings.median("json")))
    return rows


def reader_choice(quick: bool) -> list[tuple[int, float, float]]:
    """The compiled library's request fast path (ml_parse_batch) against the full parser
    (orjson.loads + batch.to_matrix), body text to float32 rows, records form, interleaved.
    Returns (rows, fast path seconds, full parser seconds)."""
    import orjson
    from ml_handler.batch import to_matrix

    model = load_compiled(compiled_library())
    names = model.feature_names
    name_set = frozenset(names)
    parse_batch = model.parse_batch
    results: list[tuple[int, float, float]] = []
    budget = 0.3 if quick else 1.5
    for size in SIZES:
        body = json.dumps(make_records(size))

        def full(body: str = body, size: int = size) -> object:
            return to_matrix(
                orjson.loads(body), feature_names=names, feature_set=name_set, max_rows=size
            )

        calls: dict[str, Callable[[], object]] = {
            "fast": partial(parse_batch, body, max_rows=size),
            "full": full,
        }
        fast_rows, full_rows = calls["fast"](), calls["full"]()
        assert fast_rows is not None, "the fast path deferred the benchmark's body"
        assert fast_rows.values.tobytes() == full_rows.values.tobytes(), "the readers disagree"
        timings = interleaved(calls, rounds_for(calls["full"], budget))
        results.append((size, timings.median("fast"), timings.median("full")))
    return results


def image_deps_mb() -> tuple[float, str]:
    """du of the pip --target layer the Dockerfile builds (allocated blocks, MiB), for the
    image's Python."""
    python = image_python()
    with tempfile.TemporaryDirectory() as scratch:
        (layer,) = image_for(python, scratch).layers
    size = sum(entry.lstat().st_blocks * 512 for entry in layer.rglob("*")) / 2**20
    return size, python_version(python)


def span(middle: float, values: list[float], show: Callable[[float], str]) -> str:
    if len(values) < 2:
        return show(middle)
    return f"{show(middle)} ({show(min(values))}-{show(max(values))})"


def span_of(values: list[float], pattern: str = "{:.3f}") -> str:
    return span(statistics.median(values), values, pattern.format)


def verdict(ratio: float, target: float) -> str:
    return "PASS" if ratio <= target else "MISS"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds: a smoke run")
    parser.add_argument("--latency-only", action="store_true", help="skip cold start and size")
    parser.add_argument(
        "--repeats", type=int, default=3, help="latency runs; each cell: median (min-max) of runs"
    )
    args = parser.parse_args(argv)

    runs = [latency(args.quick) for _ in range(max(1, args.repeats))]
    print(
        "| measurement | floor | compiled | compiled / floor | target | result "
        "| pandas | pandas / floor |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for position, row in enumerate(runs[0]):
        repeats = [run[position] for run in runs]
        ratios = [r.compiled / r.floor for r in repeats]
        ratio = statistics.median(ratios)
        compiled = statistics.median(r.compiled for r in repeats)
        target = LATENCY_TARGETS.get(row.rows)
        goal, result = (f"≤ {target}", verdict(ratio, target)) if target else ("—", "—")
        print(
            f"| latency, {row.rows} row{'s' if row.rows > 1 else ''} "
            f"| {fmt(statistics.median(r.floor for r in repeats))} "
            f"| {span(compiled, [r.compiled for r in repeats], fmt)} "
            f"| {span(ratio, ratios, '{:.3f}'.format)} | {goal} | {result} "
            f"| {fmt(statistics.median(r.pandas for r in repeats))} "
            f"| {span_of([r.pandas / r.pandas_floor for r in repeats], '{:.2f}')} |"
        )
    for position, row in enumerate(runs[0]):
        absolute = ABSOLUTE_TARGETS_S.get(row.rows)
        if absolute:
            alone = [run[position].compiled_alone for run in runs]
            middle = statistics.median(alone)
            print(
                f"| latency, {row.rows} row{'s' if row.rows > 1 else ''}, back to back | — "
                f"| {span(middle, alone, fmt)} | — | ≤ {fmt(absolute)} "
                f"| {verdict(middle, absolute)} | — | — |"
            )
    if not args.latency_only:
        cold = cold_start(args.quick)
        spans = {
            name: f"{fmt(cold[name])} ({fmt(cold[name + '_min'])}-{fmt(cold[name + '_max'])})"
            for name in ("python", "compiled", "pandas")
        }
        cold_ratio = cold["compiled"] / cold["python"]
        print(
            f"| cold start (fresh process to first POST answered) | {spans['python']} "
            f"| {spans['compiled']} | {cold_ratio:.2f}x "
            f"({cold['compiled_min'] / cold['python_max']:.2f}-"
            f"{cold['compiled_max'] / cold['python_min']:.2f}) "
            f"| ≤ {COLD_START_RATIO_TARGET}x | {verdict(cold_ratio, COLD_START_RATIO_TARGET)} "
            f"| {spans['pandas']} | — |"
        )
        size_mb, image_python = image_deps_mb()
        print(
            f"| image deps (pip --target, Python {image_python}) | — | {size_mb:.1f} MB | — "
            f"| ≤ {IMAGE_MB_TARGET:.0f} MB | {verdict(size_mb, IMAGE_MB_TARGET)} | — | — |"
        )
        print()
        print("| JSON parser for the image | orjson | json (stdlib) | json / orjson |")
        print("|---|---|---|---|")
        for measurement, ours, theirs in json_choice(args.quick):
            print(f"| {measurement} | {fmt(ours)} | {fmt(theirs)} | {theirs / ours:.2f} |")
        print()
        print(
            "| request to float32 rows (compiled model) | fast path (ml_parse_batch) "
            "| full parser (orjson + batch.py) | full / fast |"
        )
        print("|---|---|---|---|")
        for size, fast, full in reader_choice(args.quick):
            print(f"| {size} rows | {fmt(fast)} | {fmt(full)} | {full / fast:.2f} |")
    print()
    print(
        f"Medians; {len(runs)} latency run(s), cells median (min-max) over runs; latency "
        f"interleaved per round (floor = Booster.inplace_predict on a prebuilt "
        f"float32 array, nthread=1; compiled = InferenceService.handle on the image's model.so, "
        f"records body, JSON in and out, log line to /dev/null, interleaved with the floor; "
        f"pandas = DataFrame + XGBRegressor(n_jobs=1).predict, against its own interleaved "
        f"floor); cold start median (min-max) over repeats: compiled to its first POST "
        f"answered, in the image's task root "
        f"with the image's Python (its floor: `python -I -S -B -c pass`), pandas with "
        f"{sys.version.split()[0]}; JSON import: a fresh image process "
        f"importing it, less one that does not."
    )


if __name__ == "__main__":
    main()
