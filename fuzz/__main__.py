"""python -m fuzz replay | run | models | coverage

replay    the seed corpus and --count fixed-seed inputs per target through the ASan + UBSan
          build (gcc), every answer checked against its oracle: the PR gate's short run.
run       coverage-guided fuzzing with atheris (clang's libFuzzer build): one target, as long
          as --seconds says; new corpus entries and crashes go to --out.
models    the compiler: generated models compiled and compared bit for bit with xgboost on rows
          on split thresholds, one ulp either side, and NaN.
coverage  line and branch coverage (gcov) of request_parse.c and support.c by the corpus.

Sanitized runs re-execute this module with the sanitizer runtime preloaded (LD_PRELOAD).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from fuzz import library as lib
from fuzz import targets
from fuzz.replay import CORPUS

_CHILD = "CDK_ML_FUZZ_CHILD"


def _reexec_sanitized(toolchain: lib.Toolchain) -> None:
    """Run this same command again with the sanitizer runtime loaded first."""
    if os.environ.get(_CHILD):
        return
    env = lib.sanitized_env(toolchain)
    env[_CHILD] = "1"
    os.execve(sys.executable, [sys.executable, "-m", "fuzz", *sys.argv[1:]], env)


def replay_cmd(args: argparse.Namespace) -> int:
    from fuzz.replay import replay

    started = time.perf_counter()
    result = replay(
        count=args.count, seed=args.seed, names=tuple(args.targets), extra_corpus=tuple(args.corpus)
    )
    print(result.output, end="")
    for line in result.disagreements:
        if line not in result.output:  # the predictions' (checked here, not in the child)
            print(line)
    if result.sanitizer_report:
        print(result.sanitizer_report, file=sys.stderr)
    print(
        f"replay: {result.inputs} inputs, {len(result.disagreements)} disagreements, "
        f"{'a' if result.sanitizer_report else 'no'} sanitizer report "
        f"({time.perf_counter() - started:.1f} s)"
    )
    return 0 if result.clean else 1


def run(args: argparse.Namespace) -> int:
    import atheris

    toolchain = lib.clang_libfuzzer(os.path.join(atheris.path(), "asan_with_fuzzer.so"))
    model = targets.fuzz_model()
    path = lib.build_library(model, toolchain)
    _reexec_sanitized(toolchain)
    from fuzz.models import feature_names

    # Loaded before atheris starts: libFuzzer registers the library's coverage counters then.
    target = args.target
    subject = targets.make_subject(
        lib.FuzzedLibrary(path, feature_names(targets.FUZZ_SHAPE.features)),
        model,
        with_oracle=target == "predict",
    )

    def one_input(data: bytes) -> None:
        targets.check(subject, target, data)

    out = Path(args.out) / target
    (out / "corpus").mkdir(parents=True, exist_ok=True)
    (out / "crashes").mkdir(parents=True, exist_ok=True)
    dictionary = Path(__file__).resolve().parent / f"{target}.dict"
    argv = [
        sys.argv[0],
        str(out / "corpus"),
        str(CORPUS / target),
        *([f"-dict={dictionary}"] if dictionary.exists() else []),
        f"-max_total_time={args.seconds}",
        f"-artifact_prefix={out / 'crashes'}/",
        "-max_len=4096",
        f"-seed={args.seed}",
        "-print_final_stats=1",
        *args.libfuzzer,
    ]
    atheris.Setup(argv, one_input)
    atheris.Fuzz()
    return 0


def models_cmd(args: argparse.Namespace) -> int:
    from fuzz import compiler_check

    return compiler_check.main(count=args.count, seed=args.seed, max_trees=args.max_trees)


def coverage(args: argparse.Namespace) -> int:
    from fuzz import coverage as cov

    return cov.main(extra=args.corpus, count=args.count, seed=args.seed, fail_under=args.fail_under)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    replay_parser = commands.add_parser("replay", help="corpus + fixed-seed inputs (the gate)")
    replay_parser.add_argument("--count", type=int, default=2000, help="generated per target")
    replay_parser.add_argument("--seed", type=int, default=0)
    replay_parser.add_argument("--targets", nargs="+", default=list(targets.TARGETS))
    replay_parser.add_argument("--corpus", type=Path, action="append", default=[])
    replay_parser.set_defaults(handler=replay_cmd)
    run_parser = commands.add_parser("run", help="coverage-guided fuzzing with atheris")
    run_parser.add_argument("--target", choices=targets.TARGETS, default="parse")
    run_parser.add_argument("--seconds", type=int, default=600)
    run_parser.add_argument("--seed", type=int, default=1)
    run_parser.add_argument("--out", default="fuzz-out")
    run_parser.add_argument("--libfuzzer", nargs="*", default=[], help="extra libFuzzer flags")

    run_parser.set_defaults(handler=run)
    models_parser = commands.add_parser("models", help="compiled models against xgboost")
    models_parser.add_argument("--count", type=int, default=20)
    models_parser.add_argument("--seed", type=int, default=0)
    models_parser.add_argument("--max-trees", type=int, default=2000)
    models_parser.set_defaults(handler=models_cmd)
    coverage_parser = commands.add_parser("coverage", help="gcov of the runtime by the corpus")
    coverage_parser.add_argument("--corpus", type=Path, action="append", default=[])
    coverage_parser.add_argument("--count", type=int, default=0, help="generated per target")
    coverage_parser.add_argument("--seed", type=int, default=0)
    coverage_parser.add_argument(
        "--fail-under", type=float, default=0.0, help="line coverage floor (percent), per file"
    )
    coverage_parser.set_defaults(handler=coverage)
    args = parser.parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
