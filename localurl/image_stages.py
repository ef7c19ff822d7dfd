"""The builder stages of a multi-stage Dockerfile, replayed without Docker.

Only the instructions our handler/Dockerfile uses are known: in a builder stage COPY (from the
build context), WORKDIR, ENV, `dnf install` (the local C compiler stands in, so it must exist),
`pip install -r FILE` (not run: every pin must equal what the local interpreter has installed,
so the local generator is the pinned one) and `python -m model_compiler ...` (run with the local
interpreter and compiler). Absolute paths of the stage are rerooted under a folder per stage.
Anything else is refused with the instruction named. A stage's result is cached, keyed on its
instructions and the content of every file it copies, so a gate run compiles the model once.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .dockerfile import env_pairs, logical_instructions

# What the Lambda base images define before the Dockerfile runs (their WORKDIR is the task root).
BASE_IMAGE_ENV = {"LAMBDA_TASK_ROOT": "/var/task", "LAMBDA_RUNTIME_DIR": "/var/runtime"}
DEFAULT_CACHE_DIR = Path(tempfile.gettempdir()) / "cdk-ml-lambda-stages"
# The one command a builder stage may run: the repository's own model compiler.
GENERATOR_MODULE = "model_compiler"
KNOWN_SYSTEM_PACKAGES = {"gcc"}  # what `dnf install` may ask for: the local cc stands in


class StageError(RuntimeError):
    """The Dockerfile asks for something the real build would refuse (or we cannot replay)."""


@dataclass(frozen=True)
class Stage:
    name: str | None  # FROM ... AS name
    base_image: str
    instructions: tuple[tuple[str, str], ...]  # (KEYWORD, arguments) after the FROM


def parse_stages(text: str) -> list[Stage]:
    stages: list[Stage] = []
    current: list[tuple[str, str]] | None = None
    name: str | None = None
    base = ""
    for keyword, arguments in logical_instructions(text):
        if keyword == "FROM":
            if current is not None:
                stages.append(Stage(name, base, tuple(current)))
            words = [word for word in arguments.split() if not word.startswith("--")]
            if not words:
                raise StageError("FROM names no image")
            base = words[0]
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            if len(words) not in (1, 3) or (len(words) == 3 and name is None):
                raise StageError(f"cannot read FROM {arguments}")
            current = []
        elif current is None:
            if keyword != "ARG":
                raise StageError(f"{keyword} before the first FROM")
        else:
            current.append((keyword, arguments))
    if current is None:
        raise StageError("the Dockerfile has no FROM")
    stages.append(Stage(name, base, tuple(current)))
    names = [stage.name for stage in stages if stage.name]
    if len(names) != len(set(names)):
        raise StageError(f"stage names repeat: {names}")
    return stages


def copy_from(arguments: str) -> tuple[str | None, list[str], str]:
    """(stage or None, sources, destination) of one COPY; refuses flags other than --from."""
    words = shlex.split(arguments)
    stage = None
    while words and words[0].startswith("--"):
        flag = words.pop(0)
        if flag.startswith("--from="):
            stage = flag.split("=", 1)[1]
        else:
            raise StageError(f"COPY {flag} is not simulated")
    if len(words) < 2:
        raise StageError(f"COPY needs a source and a destination: {arguments}")
    *sources, destination = words
    return stage, sources, destination


def expand(text: str, env: Mapping[str, str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        name = match["braced"] or match["bare"]
        if name not in env:
            raise StageError(f"${name} is not defined at this point of the Dockerfile")
        return env[name]

    return re.sub(r"\$(?:\{(?P<braced>\w+)\}|(?P<bare>\w+))", substitute, text)


def build_stage(
    stage: Stage,
    *,
    context: Path,
    sent: set[str],
    python: str = sys.executable,
    cache_dir: Path = DEFAULT_CACHE_DIR,
) -> Path:
    """The stage's file system (absolute paths under the returned folder), built or cached."""
    key = hashlib.sha256(python_version(python).encode())
    for keyword, arguments in stage.instructions:
        key.update(f"\0{keyword} {arguments}".encode())
        if keyword == "COPY":
            for name in _context_members(copy_from(arguments)[1], sent, arguments):
                key.update(f"\0{name}\0".encode() + (context / name).read_bytes())
    root = cache_dir / f"stage-{key.hexdigest()[:20]}"
    if (root / ".complete").exists():
        return root
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="stage.", dir=cache_dir))
    try:
        _replay(stage, context=context, sent=sent, python=python, root=staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    (staging / ".complete").write_text(stage.base_image + "\n")
    try:
        staging.rename(root)
    except OSError:
        # Another run finished the same stage first: its copy is as good as ours.
        shutil.rmtree(staging, ignore_errors=True)
    return root


# compileall's options that take a value (the next word is not a path to compile).
_COMPILEALL_VALUE_OPTIONS = frozenset(
    {"--invalidation-mode", "-x", "-i", "-d", "-s", "-p", "-r", "-j", "-o", "-e"}
)


def is_compileall(command: str) -> bool:
    return shlex.split(command)[1:3] == ["-m", "compileall"]


def run_compileall(command: str, *, python: str, task_root: Path) -> None:
    """A final stage's `python -m compileall ... <dirs>`, run with `python` (the one that will
    import the code): the bytecode the image ships, so that a cold start reads it instead of
    compiling the handler's sources on a read-only /var/task."""
    words = shlex.split(command)
    if words[0] not in ("python", "python3"):
        raise StageError(f"compileall must run with the image's python: {command}")
    arguments = words[3:]
    paths: list[str] = []
    value_follows = False
    for word in arguments:
        if value_follows:
            value_follows = False
        elif word in _COMPILEALL_VALUE_OPTIONS:
            value_follows = True
        elif not word.startswith("-"):
            paths.append(word)
    if not paths or not all(Path(path).is_relative_to(task_root) for path in paths):
        raise StageError(f"compileall must name directories in the task root: {command}")
    result = subprocess.run(
        [python, "-m", "compileall", *arguments], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise StageError(f"{command} failed:\n{result.stdout}\n{result.stderr}")


def reroot(root: Path, path: str) -> Path:
    return root / path.lstrip("/")


def _replay(stage: Stage, *, context: Path, sent: set[str], python: str, root: Path) -> None:
    env = dict(BASE_IMAGE_ENV)
    workdir = env["LAMBDA_TASK_ROOT"]
    for keyword, raw in stage.instructions:
        arguments = expand(raw, env) if keyword != "ENV" else raw
        if keyword == "COPY":
            source_stage, sources, destination = copy_from(arguments)
            if source_stage is not None:
                raise StageError(f"COPY --from inside a builder stage is not simulated: {raw}")
            dest = destination if destination.startswith("/") else f"{workdir}/{destination}"
            copy_context(context, sent, sources, dest, reroot(root, "/"))
        elif keyword == "WORKDIR":
            workdir = arguments if arguments.startswith("/") else f"{workdir}/{arguments}"
            reroot(root, workdir).mkdir(parents=True, exist_ok=True)
        elif keyword == "ENV":
            env.update({key: expand(value, env) for key, value in env_pairs(raw).items()})
        elif keyword == "RUN":
            _run(arguments, python=python, root=root, workdir=workdir)
        elif keyword not in ("ARG", "LABEL"):
            raise StageError(f"the builder simulation does not know {keyword}: {raw}")


def _run(command: str, *, python: str, root: Path, workdir: str) -> None:
    words = shlex.split(command)
    if words[:2] == ["dnf", "install"]:
        packages = {word for word in words[2:] if not word.startswith("-")}
        if not packages <= KNOWN_SYSTEM_PACKAGES:
            raise StageError(f"dnf install of {sorted(packages - KNOWN_SYSTEM_PACKAGES)}")
        if shutil.which(os.environ.get("CC") or "cc") is None:
            raise StageError("the builder installs gcc, and no local cc stands in for it")
    elif words[:2] in (["pip", "install"], ["pip3", "install"]):
        for requirements in _requirement_files(words):
            _check_pins(reroot(root, requirements), python)
    elif words[:3] in (["python", "-m", GENERATOR_MODULE], ["python3", "-m", GENERATOR_MODULE]):
        argv = [python, "-m", GENERATOR_MODULE] + [
            str(reroot(root, word)) if word.startswith("/") else word for word in words[3:]
        ]
        result = subprocess.run(
            argv,
            cwd=reroot(root, workdir),
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
            env={**os.environ, "PYTHONPATH": str(reroot(root, workdir))},
        )
        if result.returncode != 0:
            raise StageError(f"RUN {command} failed:\n{result.stdout}\n{result.stderr}")
    else:
        raise StageError(f"the builder simulation runs no `{command}`")


def _requirement_files(words: list[str]) -> list[str]:
    found = []
    for index, word in enumerate(words):
        if word in ("-r", "--requirement") and index + 1 < len(words):
            found.append(words[index + 1])
        elif word.startswith("--requirement="):
            found.append(word.split("=", 1)[1])
    if not found:
        raise StageError(f"pip install without -r FILE is not simulated: {' '.join(words)}")
    return found


def _check_pins(requirements: Path, python: str) -> None:
    pins = re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", requirements.read_text(), re.M)
    if python != sys.executable:
        raise StageError("the builder's pins are checked against this interpreter only")
    for name, version in pins:
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            installed = None
        if installed != version:
            raise StageError(
                f"{requirements.name} pins {name}=={version}, the local interpreter has "
                f"{installed}: the simulated build would not use the pinned generator"
            )


def _context_members(sources: list[str], sent: set[str], arguments: str) -> list[str]:
    members: list[str] = []
    for source in sources:
        source = source.strip("/") if source not in ("/", ".", "./") else ""
        if source in sent:
            members.append(source)
            continue
        prefix = f"{source}/" if source else ""
        found = sorted(name for name in sent if name.startswith(prefix))
        if not found:
            raise StageError(f"COPY failed: {source!r} not found in the build context")
        members.extend(found)
    return members


def copy_context(
    context: Path, sent: set[str], sources: list[str], destination: str, root: Path
) -> set[str]:
    """Docker's COPY from the build context into `root`; the rerooted paths written."""
    dest_is_dir = destination.endswith("/") or len(sources) > 1
    dest = reroot(root, destination)
    written: set[str] = set()
    for source in sources:
        source = source.strip("/") if source not in ("/", ".", "./") else ""
        if source in sent:
            target = dest / Path(source).name if dest_is_dir else dest
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(context / source, target)
            written.add(str(target))
            continue
        prefix = f"{source}/" if source else ""
        members = sorted(name for name in sent if name.startswith(prefix))
        if not members:
            raise StageError(f"COPY failed: {source!r} not found in the build context")
        for name in members:
            target = dest / name[len(prefix) :]
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(context / name, target)
            written.add(str(target))
    return written


def copy_stage_file(stage_root: Path, sources: list[str], destination: str) -> list[Path]:
    """COPY --from=stage of files (not folders) to `destination` (a file, or a folder/)."""
    written = []
    for source in sources:
        path = reroot(stage_root, source)
        if not path.is_file():
            raise StageError(f"COPY --from failed: {source} is not a file the stage produced")
        into_dir = destination.endswith("/") or len(sources) > 1
        target = Path(destination) / path.name if into_dir else Path(destination)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
        written.append(target)
    return written


def python_version(python: str) -> str:
    if python == sys.executable:
        return f"{sys.version_info[0]}.{sys.version_info[1]}"
    result = subprocess.run(
        [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return result.stdout.strip()


def stage_task_root(context: Path, task_root: Path, *, cache_dir: Path = DEFAULT_CACHE_DIR) -> Path:
    """The image's task root laid out from `context` (a synthesized asset folder): builder
    stages replayed, then the final stage's COPY steps. Its `pip install` steps are not run: the
    stand-in's interpreter provides the runtime dependencies (README: what is not reproduced)."""
    *builders, final = parse_stages((context / "Dockerfile").read_text())
    sent = {p.relative_to(context).as_posix() for p in context.rglob("*") if p.is_file()}
    stages = {
        str(stage.name): build_stage(stage, context=context, sent=sent, cache_dir=cache_dir)
        for stage in builders
    }
    if task_root.exists():
        shutil.rmtree(task_root)
    task_root.mkdir(parents=True)
    env = {**BASE_IMAGE_ENV, "LAMBDA_TASK_ROOT": str(task_root)}
    for keyword, raw in final.instructions:
        if keyword == "ENV":
            env.update({key: expand(value, env) for key, value in env_pairs(raw).items()})
        elif keyword == "COPY":
            source_stage, sources, destination = copy_from(expand(raw, env))
            if not Path(destination).is_relative_to(task_root):
                raise StageError(f"COPY outside the task root: {destination}")
            if source_stage is None:
                copy_context(context, sent, sources, destination, Path("/"))
            elif source_stage in stages:
                copy_stage_file(stages[source_stage], sources, destination)
            else:
                raise StageError(f"COPY --from={source_stage}: no such stage before it")
        elif keyword == "RUN" and is_compileall(raw):
            # This interpreter runs the staged function, so it writes the bytecode it reads.
            run_compileall(expand(raw, env), python=sys.executable, task_root=task_root)
        elif keyword == "RUN":
            words = shlex.split(raw)
            if words[:2] not in (["pip", "install"], ["pip3", "install"]):
                raise StageError(f"the stand-in runs no `{raw}` in the final stage")
        elif keyword not in ("CMD", "ARG", "LABEL", "WORKDIR"):
            raise StageError(f"the stand-in does not know {keyword}: {raw}")
    return task_root
