"""Run the benchmarks and write their page, docs/benchmarks.md: where measured figures live.

    python -m bench.report [--quick] [--out FILE] [bench.handler_bench's options]   (tox -e bench)

Each benchmark runs in a process of its own and prints markdown tables; they pass through to the
terminal and go verbatim into the page, under the machine, the date and the commit they were
measured on. A benchmark that fails leaves the page as it was.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "benchmarks.md"

INTRO = """\
Written by `./dev run -e bench` (`bench/report.py`) — do not edit by hand: run it again. Every
ratio is measured side by side in one run on one machine, interleaved so that the machine's noise
hits both sides alike; cells with a range are the median (min-max) over repeats. Timed tests are
deliberately absent: targets are met here, not asserted in the gate."""

SECTIONS = {
    "bench.handler_bench": (
        "Handler",
        "Floor: `Booster.inplace_predict` on a prebuilt float32 array, one thread, the bundled "
        "model. Compiled: the image's path, the builder stage's `model.so` through ctypes, from a "
        "Function URL event in to the response out (the request fast path or the full parser, "
        "validation, prediction, JSON, the log line). Baseline: a typical pandas + "
        "`XGBRegressor` handler, same model, one thread. Cold start: a fresh process to the model "
        "loaded and the first POST answered, in the simulated image's task root.",
    ),
    "bench.endpoint_bench": (
        "Local Function URL",
        "What the local stand-in adds to a direct handler call on the same `model.so` per signed "
        "request (signing, SigV4 + IAM authorizer, the Runtime API hop, awslambdaric), where that "
        "time goes, the "
        "execution environment's cold start against the pipe-worker baseline "
        "(`bench/pipe_runtime.py`), and requests per second under concurrent signed clients.",
    ),
}


@dataclass(frozen=True, kw_only=True)
class Run:
    module: str
    argv: tuple[str, ...]
    output: str


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return (
        f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}; load average at the start {load}"
    )


def commit() -> str:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    head = git("rev-parse", "--short=12", "HEAD") or "unknown"
    return f"{head} (with uncommitted changes)" if git("status", "--porcelain") else head


def run_benchmark(module: str, argv: Sequence[str]) -> Run:
    """Run one benchmark, its tables passing through to the terminal as they come."""
    command = [sys.executable, "-m", module, *argv]
    print(f"$ {shlex.join(['python', *command[1:]])}", flush=True)
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            sys.stdout.write(line)
            lines.append(line)
    if process.returncode != 0:
        raise SystemExit(f"{module} failed ({process.returncode}); {PAGE.name} left unchanged")
    return Run(module=module, argv=tuple(argv), output="".join(lines))


def render(runs: Sequence[Run], *, when: datetime, on: str, at: str) -> str:
    parts = [
        "# Benchmarks",
        "",
        INTRO,
        "",
        f"- **Machine**: {on}",
        f"- **Date**: {when:%Y-%m-%d %H:%M} UTC",
        f"- **Commit**: `{at}`",
        "",
    ]
    for run in runs:
        title, about = SECTIONS[run.module]
        parts += [
            f"## {title}",
            "",
            f"`{shlex.join(['python', '-m', run.module, *run.argv])}`. {about}",
            "",
            run.output.rstrip(),
            "",
        ]
    return "\n".join(parts).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds: a smoke run")
    parser.add_argument("--out", type=Path, default=PAGE, help=f"the page (default {PAGE})")
    # Anything else is bench.handler_bench's (e.g. --repeats N, --latency-only).
    args, handler_args = parser.parse_known_args(argv)
    quick = ["--quick"] if args.quick else []
    when, on, at = datetime.now(UTC), machine(), commit()
    runs = [
        run_benchmark("bench.handler_bench", [*quick, *handler_args]),
        run_benchmark("bench.endpoint_bench", quick),
    ]
    args.out.write_text(render(runs, when=when, on=on, at=at))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
