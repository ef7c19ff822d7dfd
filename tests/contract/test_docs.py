"""The docs name only what exists: paths, tox envs, `./dev` commands, our programs' flags.

README.md and docs/*.md are read as a newcomer reads them (docs_text.py). A rename, a removed
flag or env, or a figure copied out of the benchmarks page turns this red, naming page and line.
Programs that are not ours (npx cdk, pip, git, mkdocs) are not checked here; the stand-in page's
commands run in test_local_endpoint.py, and `mkdocs build --strict` (tox -e docs) checks links.
"""

from __future__ import annotations

import configparser
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from bench import report
from tests.contract import config_cases
from tests.contract.docs_text import (
    PAGES,
    ROOT,
    Named,
    inline_code,
    links,
    prose_lines,
    shell_commands,
    simple_commands,
)

README = ROOT / "README.md"
BENCHMARKS = ROOT / "docs" / "benchmarks.md"
# Folders the docs may name that a checkout does not hold until something writes them.
GENERATED = {".tox", ".venv", ".venv-tools", "build", "cdk.out", "mutation-report", ".mutation"}
# Paths inside the image's build context are named relative to it (`model_compiler/`), the
# layers relative to tests/ (`unit/`).
PATH_BASES = (ROOT, ROOT / "handler", ROOT / "tests")
MEDIA_TYPES = {"application", "text"}
# tox subcommands `./dev` passes through (`./dev run -e unit`).
TOX_COMMANDS = {"run", "exec", "list", "config", "depends", "devenv", "run-parallel", "r", "e", "p"}
# Flags of pytest plugins we pin, by plugin (requirements-dev.txt must pin it).
PYTEST_PLUGIN_FLAGS = {"--snapshot-update": "syrupy"}
_TOX_ENV = re.compile(r"(?:\./dev|\btox)(?: run| exec| r| e)? -e ([\w,-]+)")
# Timings, rates and speed-ups: measured figures, which belong to docs/benchmarks.md only.
_FIGURE = re.compile(
    r"\d\s?(µs|ms)\b|\d\s?requests/s"
    r"|\d(\.\d+)?\s?\N{MULTIPLICATION SIGN}|\d+(\.\d+)?x (faster|below)"
)
_PATHLIKE = re.compile(r"^[\w.\-]+(/[\w.\-*<>]*)*/?(::\w+\*?)?$")


def _tox() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(ROOT / "tox.ini")
    return parser


def _tox_envs() -> set[str]:
    return {s.split(":", 1)[1] for s in _tox().sections() if s.startswith("testenv:")}


def _dev_commands() -> dict[str, str]:
    """`./dev`'s own commands (its `case` labels) and what each runs."""
    text = (ROOT / "dev").read_text()
    return {m[1]: m[2] for m in re.finditer(r"^\s+([\w-]+)\) (.+?) ;;$", text, re.M)}


def _tox_envs_run_by(line: str) -> list[str]:
    """The envs a `./dev` line hands to tox (`... tox run -e a,b -- "$@"`)."""
    match = re.search(r"/tox (?:run|run-parallel)\b.* -e ([\w,-]+) -- ", line)
    assert match, line
    return match[1].split(",")


def _candidate_path(text: str) -> str | None:
    """`text` as a repository path, if it reads as one: `a/b`, or a bare name at the root."""
    if "://" in text or text.startswith(("/", "-", "$")) or not _PATHLIKE.match(text):
        return None
    path = text.split("::", 1)[0]
    first = path.split("/", 1)[0]
    if first in GENERATED or first.isupper() or first in MEDIA_TYPES:
        return None  # written by a command, a placeholder (`DIR/model.so`), `application/json`
    if "/" not in path and not (ROOT / path).exists():
        return None  # a bare name (`model.ubj`) is named in its folder's context
    return path


def _missing(path: str) -> bool:
    return not any(
        list(base.glob(path.rstrip("/"))) if "*" in path else (base / path).exists()
        for base in PATH_BASES
    )


def _under(base: Path, path: str) -> str:
    """`path` under `base`, relative to the root, a folder's trailing slash kept (git's
    `cdk.out.*/` matches only folders, and these may not exist yet)."""
    return (base / path).relative_to(ROOT).as_posix() + ("/" if path.endswith("/") else "")


def _ignored_by_git(paths: list[str]) -> set[str]:
    """Paths .gitignore covers (build outputs like handler/model/model.so): named, not committed."""
    done = subprocess.run(
        ["git", "check-ignore", "--no-index", "--stdin"],
        cwd=ROOT,
        input="\n".join(paths),
        capture_output=True,
        text=True,
        check=False,
    )
    return set(done.stdout.split())


def test_every_repository_path_the_docs_name_exists() -> None:
    named: list[Named] = []
    for page in PAGES:
        named += inline_code(page)
        for link in links(page):
            if link.text.startswith(("http", "#")):
                continue
            # A link is relative to its page; the repository's paths are relative to the root.
            target = (page.parent / link.text.split("#", 1)[0]).resolve().relative_to(ROOT)
            named.append(Named(target.as_posix(), link.page, link.line))
    for command in shell_commands():
        for words in simple_commands(command.text):
            named += [Named(word, command.page, command.line) for word in words]
    checked = []
    missing = []
    for item in named:
        path = _candidate_path(item.text)
        if path is None:
            continue
        checked.append(path)
        if _missing(path):
            missing.append((item, path))
    ignored = _ignored_by_git([_under(base, path) for _, path in missing for base in PATH_BASES])
    assert len(checked) > 50, "the docs name almost no paths: the extraction broke"
    assert [
        f"{item.where}: {path}"
        for item, path in missing
        if not {_under(base, path) for base in PATH_BASES} & ignored
    ] == []


def test_every_tox_env_the_docs_name_exists() -> None:
    envs = _tox_envs()
    named = [
        (command, env)
        for command in shell_commands() + [c for p in PAGES for c in inline_code(p)]
        for match in _TOX_ENV.finditer(command.text)
        for env in match[1].split(",")
    ]
    assert len(named) > 10
    assert [f"{c.where}: {env}" for c, env in named if env not in envs] == []


def test_every_dev_command_the_docs_name_is_dispatched() -> None:
    known = set(_dev_commands()) | TOX_COMMANDS
    named = [
        (command, match[1])
        for command in shell_commands() + [c for p in PAGES for c in inline_code(p)]
        for match in re.finditer(r"\./dev (\w[\w-]*)", command.text)
    ]
    assert {"demo", "gate", "run"} <= {name for _, name in named}
    assert [f"{c.where}: ./dev {name}" for c, name in named if name not in known] == []


def test_the_two_commands_run_what_the_docs_say() -> None:
    """`./dev demo` is the demo env (test_demo.py runs its command); `./dev gate` is every env of
    tox.ini's env_list, the list the docs describe."""
    dev = _dev_commands()
    tox = _tox()
    assert _tox_envs_run_by(dev["demo"]) == ["demo"]
    assert tox["testenv:demo"]["commands"].strip() == "python -m localurl demo {posargs}"
    env_list = [e.strip() for e in tox["tox"]["env_list"].split(",")]
    assert _tox_envs_run_by(dev["gate"]) == env_list
    assert "docs" in env_list
    gate_row = next(line for _, line in prose_lines(README) if line.startswith("| `./dev gate`"))
    assert re.findall(r"`(\w+)`", gate_row.split("|")[2]) == env_list


def _program_sources(words: list[str]) -> tuple[str, list[Path]] | None:
    """The program a command runs, if it is ours, and the sources that define its flags."""
    if words[:1] == ["ml-invoke"]:
        return "client", sorted((ROOT / "client").glob("*.py"))
    if words[:2] == ["./dev", "run"] and "-e" in words and "--" in words:
        env = words[words.index("-e") + 1]
        command = _tox()[f"testenv:{env}"]["commands"].split()
        if command[0] == "pytest":
            return f"pytest ({env})", [
                ROOT / "conftest.py",
                *sorted(ROOT.glob("tests/**/conftest.py")),
            ]
        return _program_sources([*command[:3]])
    if len(words) >= 3 and words[0].endswith("python") and words[1] == "-m":
        package = words[2].split(".", 1)[0]
        for base in PATH_BASES:
            if (base / package).is_dir():
                return words[2], sorted((base / package).rglob("*.py"))
            if (base / f"{package}.py").is_file():
                return words[2], [base / f"{package}.py"]
    return None


def test_every_flag_of_our_programs_the_docs_name_is_defined() -> None:
    pins = (ROOT / "requirements-dev.txt").read_text()
    checked = 0
    undefined = []
    for command in shell_commands():
        for words in simple_commands(command.text):
            program = _program_sources(words)
            if program is None:
                continue
            name, sources = program
            text = "\n".join(path.read_text() for path in sources)
            after = words[words.index("--") + 1 :] if "--" in words else words
            flags = {w.split("=", 1)[0] for w in after if re.match(r"^--[a-z]", w)}
            for flag in flags - {"--help"}:
                checked += 1
                plugin = PYTEST_PLUGIN_FLAGS.get(flag)
                if name.startswith("pytest") and plugin and f"\n{plugin}==" in f"\n{pins}":
                    continue
                if f'"{flag}"' not in text:
                    undefined.append(f"{command.where}: {name} {flag}")
    assert checked > 15, "the docs name almost no flags: the extraction broke"
    assert undefined == []


def _readme_configuration() -> dict[str, str]:
    rows = {}
    for _, line in prose_lines(README):
        match = re.match(r"^\| `(\w+)` \| (.+?) \|", line)
        if match and match[1] in config_cases.DEFAULTS:
            rows[match[1]] = match[2].strip()
    return rows


def test_readme_configuration_table_is_the_documented_defaults() -> None:
    """Against the tests' own copy of the defaults (config_cases.py), which the configuration
    property tests check the synthesized stack against."""
    written = {
        None: "*(generated)*",
        (): "*(account)*",
    }
    expected = {}
    for key, value in config_cases.DEFAULTS.items():
        if isinstance(value, dict):
            expected[key] = "—"
        elif value is None or value == ():
            expected[key] = written[value]
        else:
            expected[key] = f"`{value}`"
    assert _readme_configuration() == expected
    retention = next(line for _, line in prose_lines(README) if "`logRetentionDays`" in line)
    listed = re.search(r"one of ([\d, ]+)", retention)
    assert listed, retention
    assert tuple(int(d) for d in listed[1].split(",")) == config_cases.RETENTION_DAYS


def test_readme_is_a_landing_page() -> None:
    assert len(README.read_text().splitlines()) <= 150


def test_no_page_but_the_benchmarks_repeats_a_measured_figure() -> None:
    copied = [
        f"{page.relative_to(ROOT)}:{number}: {line.strip()}"
        for page in PAGES
        if page != BENCHMARKS
        for number, line in prose_lines(page)
        if _FIGURE.search(line)
    ]
    assert copied == []


def test_benchmarks_page_is_what_the_benchmarks_wrote() -> None:
    """The committed page has the writer's header (machine, date, commit) and its intro."""
    text = BENCHMARKS.read_text()
    assert text.startswith("# Benchmarks\n\n" + report.INTRO)
    for field in ("Machine", "Date", "Commit"):
        assert re.search(rf"^- \*\*{field}\*\*: \S", text, re.M), field
    for title, _ in report.SECTIONS.values():
        assert f"\n## {title}\n" in text


def test_benchmark_report_keeps_each_table_whole_under_its_machine_date_and_commit() -> None:
    table = "| rows | floor |\n|---|---|\n| 1 | 335 µs |\n"
    runs = [
        report.Run(module="bench.handler_bench", argv=("--repeats", "3"), output=table),
        report.Run(module="bench.endpoint_bench", argv=(), output="### Latency\n\n" + table),
    ]
    page = report.render(
        runs, when=datetime(2026, 12, 7, 8, 0, tzinfo=UTC), on="CPU X, 2 cores", at="abc123"
    )
    assert "- **Machine**: CPU X, 2 cores\n- **Date**: 2026-12-07 08:00 UTC\n" in page
    assert "- **Commit**: `abc123`" in page
    assert "`python -m bench.handler_bench --repeats 3`" in page
    assert page.count(table) == 2
    assert page.index("## Handler") < page.index(table) < page.index("## Local Function URL")


def _slug(heading: str) -> str:
    """Python-Markdown's toc slug (what mkdocs and GitHub both produce for these headings)."""
    text = re.sub(r"[^\w\s-]", "", heading.replace("`", "")).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def test_every_anchor_a_link_names_is_a_heading_of_its_page() -> None:
    broken = []
    checked = 0
    for page in PAGES:
        for link in links(page):
            target, _, anchor = link.text.partition("#")
            if not anchor or link.text.startswith("http"):
                continue
            file = (page.parent / target).resolve() if target else page
            headings = {
                _slug(line.lstrip("#")) for _, line in prose_lines(file) if line.startswith("#")
            }
            checked += 1
            if anchor not in headings:
                broken.append(f"{link.where}: {link.text}")
    assert checked >= 5
    assert broken == []
