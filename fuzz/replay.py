"""The short deterministic run: the seed corpus and fixed-seed inputs through the ASan + UBSan
build, in a child process that has the sanitizer runtime preloaded.

The child checks parsing and formatting against their oracles itself (orjson, batch.py) and
hands its predictions back; this process checks them against xgboost, which it may already have
imported (a pytest worker has), so the sanitized child never pays xgboost's import.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fuzz import library as lib
from fuzz import targets

CORPUS = Path(__file__).resolve().parent / "corpus"


@dataclass
class Result:
    inputs: int = 0
    disagreements: list[str] = field(default_factory=list)
    sanitizer_report: str = ""
    output: str = ""

    @property
    def clean(self) -> bool:
        return not self.disagreements and not self.sanitizer_report


def corpus_of(target: str, extra: tuple[Path, ...] = ()) -> list[tuple[str, bytes]]:
    entries = []
    for folder in (CORPUS / target, *extra):
        if folder.is_dir():
            entries += [(f.name, f.read_bytes()) for f in sorted(folder.iterdir()) if f.is_file()]
    return entries


def replay(
    *,
    count: int,
    seed: int,
    names: tuple[str, ...] = targets.TARGETS,
    extra_corpus: tuple[Path, ...] = (),
) -> Result:
    toolchain = lib.gcc_asan()
    model = targets.fuzz_model()
    library = lib.build_library(model, toolchain)
    with tempfile.TemporaryDirectory() as scratch:
        predictions = Path(scratch) / "predictions.npz"
        argv = [
            sys.executable,
            "-m",
            "fuzz.replay",
            str(library),
            str(predictions),
            str(count),
            str(seed),
            ",".join(names),
            *map(str, extra_corpus),
        ]
        env = lib.sanitized_env(toolchain)
        env["PYTHONPATH"] = f"{lib.ROOT}:{lib.ROOT / 'handler'}"
        child = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        result = Result(output=child.stdout)
        result.disagreements = [
            line for line in child.stdout.splitlines() if line.startswith("DISAGREEMENT")
        ]
        result.inputs = sum(
            int(line.split()[1]) for line in child.stdout.splitlines() if line.startswith("INPUTS")
        )
        if child.returncode != 0:
            result.sanitizer_report = child.stderr[-6000:] or f"exit {child.returncode}"
            return result
        if "predict" in names:
            _check_predictions(model, predictions, result)
    return result


def _check_predictions(model: bytes, path: Path, result: Result) -> None:
    saved = np.load(path)
    rows, ours = saved["rows"], saved["ours"]
    if not len(rows):
        return
    booster = targets.load_booster(model)
    try:
        targets.check_predictions(booster, rows, ours)
    except targets.Disagreement as exc:
        result.disagreements.append(f"DISAGREEMENT predict: {exc}")


def _child(argv: list[str]) -> int:
    """In the sanitized process: check parse and format, collect predictions."""
    from fuzz import generate
    from fuzz.models import feature_names

    library_path, predictions, count, seed, names, *extra = argv
    if "asan" not in Path("/proc/self/maps").read_text():
        print("the sanitizer runtime is not loaded: nothing would be caught", file=sys.stderr)
        return 3
    model = targets.fuzz_model()
    subject = targets.make_subject(
        lib.FuzzedLibrary(Path(library_path), feature_names(targets.FUZZ_SHAPE.features)),
        model,
        with_oracle=False,
    )
    all_rows, all_ours = [], []
    for target in names.split(","):
        corpus = corpus_of(target, tuple(Path(folder) for folder in extra))
        generated = generate.inputs(
            target, [data for _, data in corpus], seed=int(seed), count=int(count)
        )
        checked = 0
        for name, data in [*corpus, *(("generated", data) for data in generated)]:
            checked += 1
            try:
                if target == "predict":
                    rows, ours = targets.check_predict(subject, data)
                    all_rows.append(rows)
                    all_ours.append(ours)
                else:
                    targets.check(subject, target, data)
            except targets.Disagreement as exc:
                print(f"DISAGREEMENT {target} {name} {data!r}: {exc}", flush=True)
        print(
            f"INPUTS {checked} {target}: {len(corpus)} corpus + {checked - len(corpus)} generated"
        )
    width = len(subject.names)
    np.savez(
        predictions,
        rows=np.concatenate(all_rows) if all_rows else np.zeros((0, width), np.float32),
        ours=np.concatenate(all_ours) if all_ours else np.zeros(0, np.float32),
    )
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
