"""Line and branch coverage (gcov) of the runtime sources, request_parse.c and support.c, by the
corpus: the library built with --coverage, every corpus entry (and, optionally, fixed-seed
inputs) passed through it in a child process, gcov over the generated model.c, whose runtime part
is those two files verbatim.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from fuzz import library as lib
from fuzz import targets
from fuzz.replay import corpus_of

SOURCES = ("request_parse.c", "support.c")


@dataclass(frozen=True)
class FileCoverage:
    name: str
    lines: int
    lines_run: int
    branches: int
    branches_taken: int
    missed: tuple[str, ...]  # "line: text" of each line never run

    def line_percent(self) -> float:
        return 100.0 * self.lines_run / max(1, self.lines)

    def branch_percent(self) -> float:
        return 100.0 * self.branches_taken / max(1, self.branches)


def measure(*, extra: tuple[Path, ...] = (), count: int = 0, seed: int = 0) -> list[FileCoverage]:
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch)
        model = targets.fuzz_model()
        toolchain = lib.Toolchain(cc="gcc", cflags=(), preload="")
        (out / "model.json").write_bytes(model)
        # Built in place (gcov finds model.c where the compiler saw it); counts next to it.
        library = lib.build.compile_model(
            out / "model.json",
            out,
            cc="gcc",
            extra_cflags=("--coverage", "-O0", "-dumpdir", f"{out}/"),
        ).library
        argv = [sys.executable, "-m", "fuzz.coverage", str(library), str(count), str(seed)]
        env = lib.sanitized_env(toolchain)  # no preload: only the import path
        env["PYTHONPATH"] = f"{lib.ROOT}:{lib.ROOT / 'handler'}"
        subprocess.run([*argv, *map(str, extra)], check=True, cwd=out, env=env)
        source = library.parent / "model.c"
        subprocess.run(
            ["gcov", "-b", "-o", str(out), str(source)],
            check=True,
            cwd=out,
            capture_output=True,
        )
        return _regions(source.read_text(), (out / "model.c.gcov").read_text())


def _regions(source: str, report: str) -> list[FileCoverage]:
    per_line: dict[int, tuple[str, list[str]]] = {}
    current = 0
    for line in report.splitlines():
        if line.startswith("branch"):
            per_line[current][1].append(line)
            continue
        parts = line.split(":", 2)
        if len(parts) == 3 and parts[1].strip().isdigit():
            current = int(parts[1])
            per_line[current] = (parts[0].strip(), [])
    results = []
    for name in SOURCES:
        text = (lib.ROOT / "handler" / "model_compiler" / name).read_text()
        first = source[: source.index(text)].count("\n") + 1
        last = first + text.count("\n")
        lines = run = branches = taken = 0
        missed = []
        source_lines = text.splitlines()
        for number in range(first, last):
            count, branch_lines = per_line.get(number, ("-", []))
            if count != "-":
                lines += 1
                if count in ("#####", "====="):
                    missed.append(f"{number - first + 1}: {source_lines[number - first].strip()}")
                else:
                    run += 1
            branches += len(branch_lines)
            taken += sum("taken 0%" not in b and "never executed" not in b for b in branch_lines)
        results.append(FileCoverage(name, lines, run, branches, taken, tuple(missed)))
    return results


def main(*, extra: list[Path], count: int, seed: int, fail_under: float = 0.0) -> int:
    short = False
    for result in measure(extra=tuple(extra), count=count, seed=seed):
        short = short or result.line_percent() < fail_under
        print(
            f"{result.name}: lines {result.lines_run}/{result.lines} "
            f"({result.line_percent():.1f}%), branches {result.branches_taken}/"
            f"{result.branches} ({result.branch_percent():.1f}%)"
        )
        for line in result.missed:
            print(f"  not run: {result.name}:{line}")
    return 1 if short else 0


def _child(argv: list[str]) -> int:
    """Every corpus input through the instrumented library; gcov's counts are written at exit."""
    from fuzz import generate
    from fuzz.models import feature_names

    library_path, count, seed, *extra = argv
    subject = targets.make_subject(
        lib.FuzzedLibrary(Path(library_path), feature_names(targets.FUZZ_SHAPE.features)),
        targets.fuzz_model(),
        with_oracle=False,
    )
    for target in targets.TARGETS:
        corpus = [data for _, data in corpus_of(target, tuple(Path(e) for e in extra))]
        for data in [*corpus, *generate.inputs(target, corpus, seed=int(seed), count=int(count))]:
            if target == "parse":
                subject.library.parse(data[1:], data[0] % 16 + 1 if data else 1)
            elif target == "format":
                subject.library.format_json(data[: len(data) - len(data) % 4])
            else:
                targets.check_predict(subject, data)
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
