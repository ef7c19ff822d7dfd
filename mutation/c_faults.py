"""C faults: plausible one-line bugs in the C runtime every model library carries (issue 21).

    python -m mutation.c_faults                  # every fault
    python -m mutation.c_faults --only parse-    # the faults whose names start so
    python -m mutation.c_faults --jobs 2

mutmut mutates Python only; this is a catalog of text patches over request_parse.c (the request
fast path) and support.c (the JSON formatter): every boundary, every key-bookkeeping rule and
every numeric branch of the parser, and the formatter's rounding and layout rules. Each is applied
to a temporary copy of the repository and the unit tests that own that file run there (those
files only, to stay fast): the fast path's properties and regressions, the formatter's, and the
fuzz replay (ASan + UBSan, exact-size buffers, every answer against its oracle).

Every fault must turn them red, or carry a reason (equivalent, or unreachable through the
library's callers) and stay green: a justified fault that turns red is reported too, so the
reasons stay true. Exit status 1 if any fault is neither, 2 if the unpatched copy is not green.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

# The workspace is config_faults' copy of the repository (mutation/run.py's COPIED, fuzz/ included).
from mutation.config_faults import (
    StalePatchError,
    Suite,
    SuiteRun,
    prepare_workspace,
    run_each,
    run_suite,
)

PARSE = "handler/model_compiler/request_parse.c"
SUPPORT = "handler/model_compiler/support.c"
# The fuzz replay first: it catches most faults in seconds, and each run stops at its first red
# test (-x); the generated-model tests (predictions, not parsing or formatting) are left out.
_REPLAY = (
    "tests/unit/test_fuzz_replay.py::test_fuzz_replay_finds_no_disagreement_and_no_sanitizer_report"
)
SUITES = {
    PARSE: Suite(name="parse", tests=(_REPLAY, "tests/unit/test_request_fast_path.py")),
    SUPPORT: Suite(
        name="format",
        tests=(
            _REPLAY,
            "tests/unit/test_model_compiler.py::test_json_formatting_matches_orjson_float32_for_any_float32",
            "tests/unit/test_model_compiler.py::test_json_formatting_matches_orjson_over_every_exponent_and_random_bits",
        ),
    ),
}


@dataclass(frozen=True, kw_only=True)
class CFault:
    name: str
    path: str
    old: str
    new: str
    reason: str = ""  # why it may stay green; empty: it must turn the tests red


def _parse(name: str, old: str, new: str, reason: str = "") -> CFault:
    return CFault(name=f"parse-{name}", path=PARSE, old=old, new=new, reason=reason)


def _format(name: str, old: str, new: str, reason: str = "") -> CFault:
    return CFault(name=f"format-{name}", path=SUPPORT, old=old, new=new, reason=reason)


FAULTS = (
    # --- bytes and structure -----------------------------------------------------------------
    _parse(
        "space-past-end",
        "while (p < end && (*p == ' '",
        "while (p <= end && (*p == ' '",
    ),
    _parse("tab-not-space", "*p == '\\t')) ++p;", "*p == '\\v')) ++p;"),
    _parse("null-short-body", "if (end - p < 4 || p[1] != 'u'", "if (end - p < 3 || p[1] != 'u'"),
    _parse("null-unchecked", "p[2] != 'l' || p[3] != 'l'", "p[2] != 'l'"),
    _parse(
        "leading-zero",
        "if (p < end && DIGIT(*p)) return 0; /* a leading zero: not JSON */",
        "/* leading zeros allowed */",
        reason="equivalent: after a leading 0 the number ends at the next digit, and no caller"
        " takes a digit after a value (only ',', ']', '}' or space), so the body defers anyway",
    ),
    _parse(
        "point-without-digits",
        "if (p == end || !DIGIT(*p)) return 0;\n"
        "        for (; p < end && DIGIT(*p); ++p) {\n            if (++fraction",
        "for (; p < end && DIGIT(*p); ++p) {\n            if (++fraction",
    ),
    _parse(
        "exponent-without-digits",
        "exponent_negative = *p++ == '-';\n        if (p == end || !DIGIT(*p)) return 0;",
        "exponent_negative = *p++ == '-';",
    ),
    _parse(
        "trailing-bytes",
        "return skip_space(p + 1, end) == end ? rows : 0;",
        "return rows;",
    ),
    _parse(
        "rows-past-max",
        "if (rows == max_rows || p == end || *p != open) return 0;",
        "if (rows > max_rows || p == end || *p != open) return 0;",
    ),
    _parse(
        "mixed-forms",
        "if (rows == max_rows || p == end || *p != open) return 0;",
        "if (rows == max_rows || p == end || (*p != '{' && *p != '[')) return 0;",
    ),
    _parse(
        "row-comma-or-bracket",
        "*p++ != (f == NUM_FEATURES - 1 ? ']' : ','))",
        "*p++ != (f == NUM_FEATURES - 2 ? ']' : ','))",
    ),
    _parse(
        "empty-batch",
        "if (p == end || (*p != '{' && *p != '[')) return 0; /* also",
        "if (p == end) return 0; /* also",
    ),
    # --- keys: bookkeeping of which features a record has -------------------------------------
    _parse(
        "key-escape",
        "if (*p < 0x20 || *p >= 0x80 || *p == '\\\\') return 0;",
        "if (*p < 0x20 || *p >= 0x80) return 0;",
    ),
    _parse(
        "key-non-ascii",
        "if (*p < 0x20 || *p >= 0x80 || *p == '\\\\') return 0;",
        "if (*p < 0x20 || *p == '\\\\') return 0;",
        reason="equivalent: raw UTF-8 in a key that equals a name's UTF-8 bytes is the key orjson "
        "reads (names are valid UTF-8), and invalid UTF-8 matches no name; str bodies that are "
        "not ASCII never reach the library (compiled_model.parse_batch)",
    ),
    _parse(
        "key-control-char",
        "if (*p < 0x20 || *p >= 0x80 || *p == '\\\\') return 0;",
        "if (*p >= 0x80 || *p == '\\\\') return 0;",
    ),
    _parse(
        "more-keys-than-features",
        "if (count >= NUM_FEATURES) return 0; /* more keys than features: unknown or repeated */",
        "",
    ),
    _parse("repeated-key", "if (f < 0 || seen[f] == stamp) return 0;", "if (f < 0) return 0;"),
    _parse("stale-stamp", "rows, seen, order, names, lengths)", "1, seen, order, names, lengths)"),
    _parse(
        "missing-key",
        "if (*p == '}') return count == NUM_FEATURES ? p + 1 : 0;",
        "if (*p == '}') return p + 1;",
    ),
    _parse(
        "guess-prefix",
        "if (guess >= 0 && lengths[guess] == length && memcmp",
        "if (guess >= 0 && memcmp",
    ),
    _parse(
        "lookup-prefix",
        "if (lengths[f] == length && memcmp(names[f], key, length) == 0) return f;",
        "if (memcmp(names[f], key, length) == 0) return f;",
    ),
    # --- numbers: every branch of the conversion -------------------------------------------------
    _parse(
        "digits-past-19",
        "if (significant <= 19) digits = digits * 10",
        "if (significant <= 20) digits = digits * 10",
        reason="equivalent: a number with more than 19 significant digits goes to strtod, which "
        "reads the text; the 64-bit digits (overflowed here) are used only up to 19",
    ),
    _parse(
        "fraction-digits-past-19",
        "if ((significant || *p != '0') && ++significant <= 19) {",
        "if ((significant || *p != '0') && ++significant <= 20) {",
        reason="equivalent: as digits-past-19, in the fraction",
    ),
    _parse(
        "fraction-leading-zero-significant",
        "if ((significant || *p != '0') && ++significant <= 19) {",
        "if (++significant <= 19) {",
        reason="equivalent: leading zeros add nothing to the digits; counted as significant they "
        "only send more numbers to strtod, which reads them right",
    ),
    _parse(
        "integer-digit-limit",
        "if (++significant > MAX_NUMBER_DIGITS) return 0;\n            if (significant <= 19)",
        "++significant;\n            if (significant <= 19)",
        reason="equivalent below 2 GB of digits: the same limit is checked once more after the "
        "fraction, before any digit is copied for strtod; the in-loop check only keeps the "
        "count from overflowing an int",
    ),
    _parse(
        "fraction-digit-limit",
        "if (++fraction > MAX_NUMBER_DIGITS) return 0;",
        "++fraction;",
        reason="equivalent below 2 GB of digits: significant digits are bounded after the loop, "
        "leading zeros are skipped by the copy, and only 2^31 zeros could overflow the "
        "exponent (Lambda bodies are at most 6 MB)",
    ),
    _parse(
        "exponent-overflow",
        "if (written > MAX_WRITTEN_EXPONENT) return 0;",
        "",
    ),
    _parse("exponent-sign", "if (exponent_negative) written = -written;", ""),
    _parse(
        "int64-boundary",
        "if (integer && significant <= 19 && digits < (1ULL << 63)) {",
        "if (integer && significant <= 19 && digits <= (1ULL << 63)) {",
    ),
    _parse(
        "integer-negative-zero",
        "value = (double)(negative ? -(int64_t)digits : (int64_t)digits);",
        "value = negative ? -(double)digits : (double)digits;",
    ),
    _parse(
        "decimal-negative-zero", "value = negative ? -0.0 : 0.0; /* any exponent */", "value = 0.0;"
    ),
    _parse(
        "clinger-exponent",
        "digits <= MAX_EXACT_DIGITS && exponent >= -22 &&\n               exponent <= 22) {",
        "digits <= MAX_EXACT_DIGITS && exponent >= -22 &&\n               exponent <= 23) {",
    ),
    _parse(
        "clinger-digits",
        "} else if (significant <= 19 && digits <= MAX_EXACT_DIGITS && exponent >= -22",
        "} else if (significant <= 19 && digits <= 4 * MAX_EXACT_DIGITS && exponent >= -22",
    ),
    _parse(
        "clinger-sign",
        "EXACT_POW10[exponent];\n        if (negative) value = -value;",
        "EXACT_POW10[exponent];",
    ),
    _parse(
        "margin-zero",
        "return dropped + 8 < midpoint || dropped > midpoint + 8;",
        "return dropped < midpoint || dropped > midpoint;",
    ),
    _parse(
        "margin-subnormal",
        "if (!(value >= 0x1p-126 && value < 0x1p128)) return 0;",
        "if (!(value > 0 && value < 0x1p128)) return 0;",
        reason="equivalent: a decimal that reaches the approximation (power of ten >= -44) with a "
        "subnormal float32 value has at most 7 digits, far coarser than the approximation's "
        "3-ulp error, so none lies that close to a subnormal float32 midpoint",
    ),
    _parse(
        "margin-overflow",
        "if (!(value >= 0x1p-126 && value < 0x1p128)) return 0;",
        "if (!(value >= 0x1p-126)) return 0;",
        reason="equivalent: above 2^128 the approximation is beyond FLOAT32_OVERFLOW by far more "
        "than its 3 ulps of error, so the range check below defers it either way",
    ),
    _parse(
        "margin-sign",
        "clear(value)) {\n            if (negative) value = -value;",
        "clear(value)) {",
    ),
    _parse(
        "two-scalings-range",
        "if (significant <= 19 && exponent >= -44 && exponent <= 44) {",
        "if (significant <= 19 && exponent >= -45 && exponent <= 45) {",
    ),
    _parse(
        "strtod-exponent",
        "value = correctly_rounded(start, mantissa_end, written - fraction);",
        "value = correctly_rounded(start, mantissa_end, exponent);",
    ),
    _parse(
        "strtod-leading-zeros",
        "for (; p < end && (*p == '0' || *p == '.'); ++p) continue;",
        "",
        reason="equivalent: strtod reads leading zeros as zeros, and the 800-digit limits on "
        "the integer part (which has none) and the fraction bound the copy either way",
    ),
    _parse(
        "overflow-boundary",
        "if (!(value > -FLOAT32_OVERFLOW && value < FLOAT32_OVERFLOW)) return 0;",
        "if (!(value >= -FLOAT32_OVERFLOW && value <= FLOAT32_OVERFLOW)) return 0;",
    ),
    _parse(
        "overflow-unchecked",
        "if (!(value > -FLOAT32_OVERFLOW && value < FLOAT32_OVERFLOW)) return 0;",
        "",
    ),
    _parse("null-bits", '*out = __builtin_nanf("");', '*out = -__builtin_nanf("");'),
    # --- the formatter: shortest digits, their rounding, orjson's layout -------------------------
    _format(
        "ties-inclusive",
        "int inclusive = (m & 1) == 0;",
        "int inclusive = (m & 1) == 1;",
        reason="not shown by any test: it changes the answer only when an interval endpoint is "
        "itself a shortest decimal (random bits, every exponent and the corpus never met "
        "one); an exhaustive float32 scan would settle it",
    ),
    _format(
        "lower-gap",
        "uint64_t low_num = 4 * m - (fraction == 0 && biased > 1 ? 1 : 2);",
        "uint64_t low_num = 4 * m - 2;",
    ),
    _format(
        "nearest-ties-to-even",
        "if (twice > middle || (twice == middle && (d & 1))) d += 1;",
        "if (twice >= middle) d += 1;",
    ),
    _format("nearest-rounding", "if (twice > middle || (twice == middle && (d & 1))) d += 1;", ""),
    _format(
        "clamp-low",
        "    if (d < lo) d = lo;\n",
        "",
        reason="equivalent in float32: only the asymmetric intervals (powers of two) can need it, "
        "and none in the fast range does (every one, with its neighbours, is in the format "
        "corpus: fuzz/corpus/format/powers-of-two-fast-range)",
    ),
    _format(
        "clamp-high",
        "    if (d > hi) d = hi;\n",
        "",
        reason="equivalent: rounding intervals are symmetric except at powers of two, where the "
        "lower half is the short one; the nearest decimal can then only fall below the "
        "interval, never above",
    ),
    _format(
        "fast-range-low",
        "if (last > 29) return 0; /* below 1e-19",
        "if (last > 30) return 0; /* below 1e-19",
        reason="equivalent: 10^30 still fits the 128-bit arithmetic with a 27-bit numerator (< "
        "2^127), so the exact fast path stays exact one decade further down",
    ),
    _format(
        "probe-neighbours",
        "for (int delta = 0; delta <= 2; ++delta) {",
        "for (int delta = 0; delta <= 0; ++delta) {",
    ),
    _format(
        "probe-closest",
        "if (chosen < 0 || distance < best) {",
        "if (chosen < 0 || distance > best) {",
        reason="equivalent: the round-trip interval is convex, so when the nearest candidate fails "
        "at most one of its two neighbours lies inside: there is never a second one to "
        "compare",
    ),
    _format("nan-as-null", "if (v != v || v - v != 0.0f) {", "if (v - v != 0.0f && v == v) {"),
    _format(
        "negative-zero",
        "if (v < 0.0f || (v == 0.0f && 1.0f / v < 0.0f)) {",
        "if (v < 0.0f) {",
    ),
    _format("integer-layout", "if (length <= kk && kk <= 13) {", "if (length <= kk && kk <= 14) {"),
    _format(
        "decimal-layout", "} else if (0 < kk && kk <= 13) {", "} else if (0 < kk && kk <= 14) {"
    ),
    _format("small-layout", "} else if (-6 < kk && kk <= 0) {", "} else if (-7 < kk && kk <= 0) {"),
    _format("exponent-plus", 'exponent > 0 ? "e+%d" : "e%d"', 'exponent > 0 ? "e%d" : "e%d"'),
    _format(
        "capacity",
        "return 2 + n * 18; }",
        "return 2 + n * 16; }",
    ),
)


@dataclass(frozen=True, kw_only=True)
class Result:
    fault: CFault
    run: SuiteRun | None = None
    stale: str = ""

    @property
    def verdict(self) -> str:
        if self.stale:
            return "STALE PATCH"
        assert self.run is not None
        if self.run.red:
            return "red" if not self.fault.reason else "RED (reason no longer true)"
        return "justified" if self.fault.reason else "SURVIVED"

    @property
    def ok(self) -> bool:
        return self.verdict in ("red", "justified")


def run_fault(fault: CFault, workspace: Path) -> Result:
    try:
        prepare_workspace(workspace)
        target = workspace / fault.path
        text = target.read_text()
        if (count := text.count(fault.old)) != 1:
            raise StalePatchError(f"{fault.old!r} found {count} times, expected once")
        target.write_text(text.replace(fault.old, fault.new))
        return Result(fault=fault, run=run_suite(SUITES[fault.path], workspace))
    except StalePatchError as exc:
        return Result(fault=fault, stale=str(exc))
    finally:
        shutil.rmtree(workspace, ignore_errors=True)


def _first_tests(run: SuiteRun | None, limit: int = 2) -> str:
    if run is None:
        return ""
    names = sorted({name.split("[", 1)[0] for name in run.failed or run.errors})
    return ", ".join(names[:limit]) + (f" (+{len(names) - limit})" if len(names) > limit else "")


def table(results: list[Result]) -> str:
    lines = ["| fault | file | verdict | red tests, or the reason | s |", "|---|---|---|---|---:|"]
    for result in results:
        fault = result.fault
        detail = result.stale or (
            fault.reason if result.verdict == "justified" else _first_tests(result.run)
        )
        seconds = f"{result.run.seconds:.0f}" if result.run else ""
        file = Path(fault.path).name
        lines.append(f"| {fault.name} | {file} | {result.verdict} | {detail} | {seconds} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mutation.c_faults", description=__doc__)
    parser.add_argument("--only", nargs="+", default=[""], help="faults whose names start so")
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args(argv)
    faults = [fault for fault in FAULTS if fault.name.startswith(tuple(args.only))]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="c-faults-") as tmp:
        work = Path(tmp)
        baseline = work / "baseline"
        prepare_workspace(baseline)
        suites = {fault.path: SUITES[fault.path] for fault in faults}
        for suite in suites.values():
            run = run_suite(suite, baseline)
            print(
                f"baseline {suite.name}: {run.verdict.lower()} in {run.seconds:.0f} s", flush=True
            )
            if run.red:
                print(f"the unpatched copy is not green: {_first_tests(run, 10)}", file=sys.stderr)
                return 2
        shutil.rmtree(baseline, ignore_errors=True)
        # A verdict needs one red test: stop there (run_suite's pytest reads the environment).
        os.environ["PYTEST_ADDOPTS"] = "-x"
        results = run_each(run_fault, faults, work=work, jobs=args.jobs)
    print(table(results))
    red = sum(result.verdict == "red" for result in results)
    justified = sum(result.verdict == "justified" for result in results)
    print(
        f"\n{red}/{len(results)} red, {justified} justified, "
        f"{len(results) - red - justified} neither; {time.monotonic() - started:.0f} s"
    )
    return 0 if all(result.ok for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
