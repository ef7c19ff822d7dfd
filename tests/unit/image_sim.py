"""Simulate the handler image without Docker: read handler/Dockerfile, lay out a task root from
exactly what it COPYs (honouring .dockerignore), its builder stage replayed by
localurl/image_stages.py (local cc, model.so cached by content) for COPY --from, run its pip RUN
step with the image's Python, then run the CMD through the Lambda runtime interface client
(awslambdaric, as the base image does) in an isolated interpreter that sees nothing but that
task root and the runtime's own directory, against the local Runtime API.

Used by tests/unit/test_image.py and by bench/handler_bench.py (cold start, image size), so both
measure the same layout from the same cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from localurl.dockerfile import env_pairs
from localurl.image_stages import (
    Stage,
    StageError,
    build_stage,
    copy_from,
    copy_stage_file,
    is_compileall,
    parse_stages,
    run_compileall,
)

ROOT = Path(__file__).resolve().parents[2]
# pip --target output, reused across runs: an install takes 10-60 s, a hardlinked copy < 1 s.
CACHE_DIR = ROOT / ".tox" / "image-sim"
# What the Lambda base images define before the Dockerfile runs.
BASE_IMAGE_ENV = {"LAMBDA_TASK_ROOT": "/var/task", "LAMBDA_RUNTIME_DIR": "/var/runtime"}
LAMBDA_BASE_IMAGE = re.compile(r"^public\.ecr\.aws/lambda/python:(?P<major>\d+)\.(?P<minor>\d+)")


# The Dockerfile asks for something the real build would refuse (or we cannot simulate).
ImageBuildError = StageError


# --- Dockerfile -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


@dataclass(frozen=True)
class Dockerfile:
    base_image: str
    instructions: tuple[Instruction, ...]  # of the final stage
    cmd: tuple[str, ...]
    builders: tuple[Stage, ...] = ()  # the named stages before it

    @property
    def python_version(self) -> tuple[int, int] | None:
        match = LAMBDA_BASE_IMAGE.match(self.base_image)
        return (int(match["major"]), int(match["minor"])) if match else None

    def of(self, keyword: str) -> list[Instruction]:
        return [step for step in self.instructions if step.keyword == keyword]


def parse_dockerfile(text: str) -> Dockerfile:
    *builders, final = parse_stages(text)
    if any(stage.name is None for stage in builders):
        raise ImageBuildError("every stage but the last must be named (FROM ... AS name)")
    instructions = [Instruction(k, a) for k, a in final.instructions]
    cmds = [step for step in instructions if step.keyword == "CMD"]
    if not cmds:
        raise ImageBuildError("the Dockerfile has no CMD naming the handler")
    # Docker uses the last CMD; the Lambda images take the exec (JSON) form.
    cmd = json.loads(cmds[-1].arguments)
    return Dockerfile(
        base_image=final.base_image,
        instructions=tuple(instructions),
        cmd=tuple(cmd),
        builders=tuple(builders),
    )


def expand(text: str, env: Mapping[str, str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        name = match["braced"] or match["bare"]
        if name not in env:
            raise ImageBuildError(f"${name} is not defined at this point of the Dockerfile")
        return env[name]

    return re.sub(r"\$(?:\{(?P<braced>\w+)\}|(?P<bare>\w+))", substitute, text)


def parse_env(arguments: str) -> dict[str, str]:
    return env_pairs(arguments)


# --- .dockerignore ----------------------------------------------------------------------------


@dataclass(frozen=True)
class IgnoreRule:
    pattern: re.Pattern[str]
    negated: bool


def parse_dockerignore(text: str) -> list[IgnoreRule]:
    rules = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        body = line[1:].strip() if negated else line
        body = os.path.normpath(body).lstrip("/")
        rules.append(IgnoreRule(re.compile(_glob_to_regex(body)), negated))
    return rules


def _glob_to_regex(pattern: str) -> str:
    # Go's filepath.Match, as Docker uses it: * and ? stop at "/", ** crosses directories.
    out, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            if pattern.startswith("/", i):
                out[-1] = "(?:.*/)?"
                i += 1
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = pattern.index("]", i + 1)
            body = pattern[i + 1 : end].replace("\\", "\\\\")
            out.append("[" + ("^" + body[1:] if body.startswith("^") else body) + "]")
            i = end
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out) + r"\Z"


def is_ignored(relative: str, rules: Sequence[IgnoreRule]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parent folders wins."""
    parts = relative.split("/")
    candidates = ["/".join(parts[: depth + 1]) for depth in range(len(parts))]
    ignored = False
    for rule in rules:
        if any(rule.pattern.match(candidate) for candidate in candidates):
            ignored = not rule.negated
    return ignored


def context_files(context: Path) -> set[str]:
    """Every file of the build context that Docker would send, as posix paths."""
    ignore = context / ".dockerignore"
    rules = parse_dockerignore(ignore.read_text()) if ignore.exists() else []
    sent = set()
    for path in context.rglob("*"):
        if path.is_file():
            relative = path.relative_to(context).as_posix()
            if not is_ignored(relative, rules):
                sent.add(relative)
    return sent


# --- building the task root -------------------------------------------------------------------


@dataclass(frozen=True)
class SimulatedImage:
    task_root: Path
    python: str
    env: dict[str, str]
    handler: str
    copied: frozenset[str] = field(default_factory=frozenset)
    # The cached pip --target output of each RUN step (what `du` of the deps layer measures).
    layers: tuple[Path, ...] = ()


def build_image(context: Path, task_root: Path, python: str) -> SimulatedImage:
    """Replay the Dockerfile's COPY, RUN (pip only) and ENV steps into `task_root`."""
    dockerfile = parse_dockerfile((context / "Dockerfile").read_text())
    sent = context_files(context)
    task_root.mkdir(parents=True, exist_ok=True)
    env = {**BASE_IMAGE_ENV, "LAMBDA_TASK_ROOT": str(task_root)}
    image_env: dict[str, str] = {}
    copied: set[str] = set()
    layers: list[Path] = []
    # The builder stages run with this interpreter (it has the pinned generator) and local cc.
    stages = {
        str(stage.name): build_stage(stage, context=context, sent=sent, cache_dir=CACHE_DIR)
        for stage in dockerfile.builders
    }
    for step in dockerfile.instructions:
        if step.keyword in ("FROM", "CMD"):
            continue
        if step.keyword == "COPY" and step.arguments.startswith("--from="):
            source_stage, sources, destination = copy_from(expand(step.arguments, env))
            if source_stage not in stages:
                raise ImageBuildError(f"COPY --from={source_stage}: no such stage before it")
            if not Path(destination).is_relative_to(task_root):
                raise ImageBuildError(f"COPY outside the task root: {destination}")
            for target in copy_stage_file(stages[source_stage], sources, destination):
                copied.add(target.relative_to(task_root).as_posix())
        elif step.keyword == "COPY":
            copied |= _copy(expand(step.arguments, env), context, sent, task_root)
        elif step.keyword == "RUN" and is_compileall(step.arguments):
            run_compileall(expand(step.arguments, env), python=python, task_root=task_root)
        elif step.keyword == "RUN":
            layers.append(_run_pip(expand(step.arguments, env), python, task_root))
        elif step.keyword == "ENV":
            values = {key: expand(value, env) for key, value in parse_env(step.arguments).items()}
            env.update(values)
            image_env.update(values)
        elif step.keyword not in ("ARG", "LABEL", "WORKDIR"):
            raise ImageBuildError(f"the simulation does not know {step.keyword}: {step.arguments}")
    if len(dockerfile.cmd) != 1:
        raise ImageBuildError(f"CMD must name one handler, got {list(dockerfile.cmd)}")
    return SimulatedImage(
        task_root=task_root,
        python=python,
        env={**image_env, "LAMBDA_TASK_ROOT": str(task_root)},
        handler=dockerfile.cmd[0],
        copied=frozenset(copied),
        layers=tuple(layers),
    )


def _copy(arguments: str, context: Path, sent: set[str], task_root: Path) -> set[str]:
    if arguments.startswith("["):
        words = list(json.loads(arguments))
    else:
        words = [word for word in shlex.split(arguments) if not word.startswith("--")]
    *sources, destination = words
    dest_is_dir = destination.endswith("/") or len(sources) > 1
    dest = Path(destination)
    if not dest.is_relative_to(task_root):
        raise ImageBuildError(f"COPY outside the task root: {destination}")
    copied: set[str] = set()
    for source in sources:
        source = source.strip("/") if source not in ("/", ".", "./") else ""
        if source in sent:
            target = dest / Path(source).name if dest_is_dir else dest
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(context / source, target)
            copied.add(target.relative_to(task_root).as_posix())
            continue
        prefix = f"{source}/" if source else ""
        members = sorted(name for name in sent if name.startswith(prefix))
        if not members:
            # What `docker build` says when .dockerignore (or a typo) hides the source.
            raise ImageBuildError(f"COPY failed: {source!r} not found in the build context")
        for name in members:
            target = dest / name[len(prefix) :]
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(context / name, target)
            copied.add(target.relative_to(task_root).as_posix())
    return copied


def _run_pip(command: str, python: str, task_root: Path) -> Path:
    words = shlex.split(command)
    if words[:2] not in (["pip", "install"], ["pip3", "install"]):
        raise ImageBuildError(f"the simulation runs only `pip install` steps, not: {command}")
    target = _option(words, "--target")
    if target is None or Path(target) != task_root:
        raise ImageBuildError("pip install must --target the task root, as the image loads it")
    requirements = [Path(path) for path in _options(words, "-r", "--requirement")]
    key_material = [python_version_of(python), *words]
    for path in requirements:
        key_material.append(path.read_text())
    key = hashlib.sha256("\0".join(key_material).replace(str(task_root), "$ROOT").encode())
    layer = _cached_layer(key.hexdigest()[:16], python, words, target)
    _link_tree(layer, task_root)
    return layer


def _cached_layer(key: str, python: str, words: list[str], target: str) -> Path:
    layer = CACHE_DIR / key
    if (layer / ".complete").exists():
        return layer
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{key}.", dir=CACHE_DIR))
    redirected = [
        str(staging)
        if word == target
        else f"--target={staging}"
        if word == f"--target={target}"
        else word
        for word in words[1:]
    ]
    argv = [python, "-m", "pip", *redirected]
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=900)
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise ImageBuildError(f"{' '.join(argv)} failed:\n{result.stdout}\n{result.stderr}")
    (staging / ".complete").write_text(" ".join(argv) + "\n")
    try:
        staging.rename(layer)
    except OSError:
        # Another run finished the same layer first: its copy is as good as ours.
        shutil.rmtree(staging, ignore_errors=True)
    return layer


def _link_tree(source: Path, destination: Path) -> None:
    def link_or_copy(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(
        source,
        destination,
        copy_function=link_or_copy,
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns(".complete"),
    )


def _option(words: list[str], name: str) -> str | None:
    found = _options(words, name)
    return found[-1] if found else None


def _options(words: list[str], *names: str) -> list[str]:
    values = []
    for index, word in enumerate(words):
        for name in names:
            if word == name and index + 1 < len(words):
                values.append(words[index + 1])
            elif word.startswith(name + "="):
                values.append(word.split("=", 1)[1])
    return values


def directory_size_mb(path: Path) -> float:
    """Disk usage as du counts it (allocated blocks), in MiB."""
    total = sum(entry.lstat().st_blocks * 512 for entry in path.rglob("*"))
    return total / 2**20


# --- the image's interpreter ------------------------------------------------------------------


@cache
def python_version_of(python: str) -> str:
    result = subprocess.run(
        [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return result.stdout.strip()


def find_python(version: tuple[int, int]) -> str | None:
    """An interpreter of `version` with pip: PATH first, then pyenv's versions."""
    name = f"python{version[0]}.{version[1]}"
    candidates: list[str] = []
    if found := shutil.which(name):
        candidates.append(found)
    roots = [
        os.environ.get("PYENV_ROOT"),
        _pyenv_root(),
        str(Path.home() / ".pyenv"),
        "/root/.pyenv",
    ]
    for root in filter(None, roots):
        versions = sorted(Path(root, "versions").glob(f"{version[0]}.{version[1]}*"), reverse=True)
        candidates.extend(str(path / "bin" / name) for path in versions)
    for candidate in dict.fromkeys(candidates):
        if _usable(candidate, version):
            return candidate
    return None


def _pyenv_root() -> str | None:
    if not shutil.which("pyenv"):
        return None
    result = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=False)
    return result.stdout.strip() or None


def _usable(python: str, version: tuple[int, int]) -> bool:
    # pyenv shims exist for every installed version but fail unless that version is selected.
    try:
        result = subprocess.run(
            [python, "-c", "import sys, pip; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
    except OSError:
        return False
    return result.returncode == 0 and result.stdout.strip() == f"{version[0]}.{version[1]}"


# --- invoking the handler through the Lambda runtime ------------------------------------------

# The base image's runtime directory (/var/runtime): the runtime interface client and its
# dependencies, at the versions this repository pins for the local stand-in.
RUNTIME_PACKAGES = ("awslambdaric", "simplejson", "snapshot-restore-py")


def runtime_pins() -> list[str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        name, _, version = line.strip().partition("==")
        if version:
            pins[name.lower().replace("_", "-")] = f"{name}=={version}"
    missing = [name for name in RUNTIME_PACKAGES if name not in pins]
    if missing:
        raise ImageBuildError(f"constraints.txt pins none of {missing}")
    return [pins[name] for name in RUNTIME_PACKAGES]


def runtime_dir(python: str) -> Path:
    """awslambdaric installed for `python` (wheels: its native client needs no toolchain)."""
    pins = runtime_pins()
    target = "$RUNTIME_DIR"
    words = ["pip", "install", "--no-cache-dir", "--no-deps", "--only-binary", ":all:"]
    key = hashlib.sha256("\0".join([python_version_of(python), *words, *pins]).encode())
    return _cached_layer(
        f"runtime-{key.hexdigest()[:16]}", python, [*words, "--target", target, *pins], target
    )


def execution_env(python: str) -> str:
    """AWS_EXECUTION_ENV of a Lambda Python base image running `python`."""
    return f"AWS_Lambda_python{python_version_of(python)}"


@dataclass(frozen=True)
class Invocation:
    returncode: int
    python: str | None
    responses: list[dict[str, object]]
    errors: list[dict[str, object] | None]
    init_error: str | None
    modules: dict[str, str | None]
    stdlib: list[str]
    runtime_dir: str
    stdout: str
    stderr: str


def invoke(image: SimulatedImage, events: Iterable[Mapping[str, object]]) -> Invocation:
    """Each event through one execution environment of the image, in order, as Lambda would:
    awslambdaric resolves the CMD, calls the handler, serializes or reports errors. stdout is
    the environment's log (its stdout and stderr, as CloudWatch gets them)."""
    runtime = runtime_dir(image.python)
    with tempfile.TemporaryDirectory() as scratch:
        paths = {name: Path(scratch, f"{name}.json") for name in ("request", "out", "dump")}
        log = Path(scratch, "function.log")
        paths["request"].write_text(
            json.dumps(
                {
                    "task_root": str(image.task_root),
                    "handler": image.handler,
                    "environment": image.env,
                    "python": image.python,
                    "execution_env": execution_env(image.python),
                    "base_environment": {**runtime_env(image), "LAMBDA_RUNTIME_DIR": str(runtime)},
                    "events": list(events),
                    "out": str(paths["out"]),
                    "dump": str(paths["dump"]),
                    "log": str(log),
                }
            )
        )
        completed = subprocess.run(
            [sys.executable, "-m", "tests.unit.image_runtime", str(paths["request"])],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        outcomes = json.loads(paths["out"].read_text()) if paths["out"].exists() else []
        dump = json.loads(paths["dump"].read_text()) if paths["dump"].exists() else {}
        stdout = log.read_text(errors="replace") if log.exists() else ""
    init_errors = [outcome["init_error"] for outcome in outcomes if outcome["init_error"]]
    return Invocation(
        returncode=completed.returncode,
        python=dump.get("python"),
        responses=[outcome["result"] for outcome in outcomes if outcome["result"] is not None],
        errors=[outcome["error_document"] for outcome in outcomes],
        init_error=init_errors[0] if init_errors else None,
        modules=dump.get("modules", {}),
        stdlib=dump.get("stdlib", []),
        runtime_dir=str(runtime),
        stdout=stdout,
        stderr=completed.stderr,
    )


def runtime_env(image: SimulatedImage) -> dict[str, str]:
    # A fresh environment, as in Lambda: nothing of the test process (MODEL_PATH, MAX_ROWS...).
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "TZ": ":UTC", **image.env}


def current_python() -> str:
    return sys.executable
