"""python -m model_compiler MODEL --out DIR [--cc CC] [--target-arg ARG ...] [--cflag FLAG ...]"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .build import CompileError, compile_model
from .forest import UnsupportedModel


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m model_compiler",
        description="Compile an XGBoost regression model (JSON or UBJSON) to a shared library "
        "bit-identical to Booster.inplace_predict (float32).",
    )
    parser.add_argument("model", type=Path, help="the XGBoost model file (.json or .ubj)")
    parser.add_argument("--out", type=Path, required=True, help="folder for model.so, model.c")
    parser.add_argument("--cc", help="C compiler command (default: $CC, else cc)")
    parser.add_argument(
        "--target-arg",
        action="append",
        default=[],
        help="extra compiler argument, e.g. --target-arg=-target --target-arg=aarch64-linux-gnu",
    )
    parser.add_argument(
        "--cflag",
        action="append",
        default=[],
        help="compiler flag after the built-in ones (may override them), e.g. "
        "--cflag=-fsanitize=address,undefined for an instrumented build",
    )
    args = parser.parse_args(argv)
    try:
        artifact = compile_model(
            args.model,
            args.out,
            cc=args.cc,
            target_args=tuple(args.target_arg),
            extra_cflags=tuple(args.cflag),
        )
    except UnsupportedModel as exc:
        print(f"model_compiler: cannot compile {args.model}: {exc}", file=sys.stderr)
        return 2
    except (CompileError, OSError) as exc:
        print(f"model_compiler: {exc}", file=sys.stderr)
        return 1
    print(
        f"model_compiler: {args.model} ({len(artifact.forest.trees)} trees, "
        f"{len(artifact.forest.feature_names)} features) -> {artifact.library}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
