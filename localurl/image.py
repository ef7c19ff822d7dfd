"""The handler image without Docker: its Dockerfile read once and every stage replayed locally.

Used by the stand-in (deploy.py), the simulated image (tests/unit/test_image.py) and the
benchmarks (bench/), so all three serve the same layout, built from the same cache.

Only what our Dockerfile uses is known; anything else is refused with the instruction named:
- COPY from the build context (as .dockerignore leaves it) or, with --from, from an earlier stage;
  ENV, WORKDIR, ARG and LABEL; CMD naming one handler.
- RUN `dnf install gcc` (the local C compiler stands in, so it must exist);
  `python -m model_compiler ...` (this interpreter: it holds the pinned generator);
  `python -m compileall ...` (the interpreter that will import the code);
  `pip install -r FILE`: in a builder stage and for the stand-in every pin is only checked against
  this interpreter (which runs the generator, or the function); for the simulated image the
  final stage's install runs with the image's Python into a cached layer, hardlinked in.
A builder stage's absolute paths are rerooted under a folder of its own, and the final stage
writes only inside the task root. A builder stage and a pip layer are cached by content (the
instructions, the files they copy, the Python version), built once under a file lock: parallel
test workers wait for the first one instead of compiling the model again.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from filelock import FileLock

# What the Lambda base images define before the Dockerfile runs (their WORKDIR is the task root).
BASE_IMAGE_ENV = {"LAMBDA_TASK_ROOT": "/var/task", "LAMBDA_RUNTIME_DIR": "/var/runtime"}
# Their bootstrap sets AWS_EXECUTION_ENV=AWS_Lambda_pythonX.Y.
LAMBDA_PYTHON_BASE = re.compile(r"^public\.ecr\.aws/lambda/python:(?P<major>\d+)\.(?P<minor>\d+)")
CACHE_DIR = Path.home() / ".cache" / "cdk-ml-lambda" / "image"
GENERATOR_MODULE = "model_compiler"
KNOWN_SYSTEM_PACKAGES = {"gcc"}  # what `dnf install` may ask for: the local cc stands in


class ImageBuildError(RuntimeError):
    """The Dockerfile asks for something the real build would refuse (or we cannot replay)."""


# --- the Dockerfile ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Stage:
    name: str | None  # FROM ... AS name
    base_image: str
    instructions: tuple[tuple[str, str], ...]  # (KEYWORD, arguments) after the FROM


@dataclass(frozen=True)
class Dockerfile:
    builders: tuple[Stage, ...]  # the named stages before the last
    final: Stage

    @property
    def base_image(self) -> str:
        return self.final.base_image

    @property
    def python_version(self) -> tuple[int, int] | None:
        match = LAMBDA_PYTHON_BASE.match(self.base_image)
        return (int(match["major"]), int(match["minor"])) if match else None

    @property
    def execution_env(self) -> str | None:
        """AWS_EXECUTION_ENV in the image; None for an OS-only base image (Lambda sets none)."""
        version = self.python_version
        return f"AWS_Lambda_python{version[0]}.{version[1]}" if version else None

    @property
    def handler(self) -> str:
        """The one handler the last CMD names (exec or shell form)."""
        cmds = [arguments for keyword, arguments in self.final.instructions if keyword == "CMD"]
        if not cmds:
            raise ImageBuildError("the Dockerfile has no CMD naming the handler")
        command = json.loads(cmds[-1]) if cmds[-1].startswith("[") else shlex.split(cmds[-1])
        if len(command) != 1:
            raise ImageBuildError(f"CMD must name exactly one handler, got {command}")
        return str(command[0])


def read_dockerfile(context: Path) -> Dockerfile:
    return parse_dockerfile((context / "Dockerfile").read_text())


def parse_dockerfile(text: str) -> Dockerfile:
    stages: list[Stage] = []
    current: list[tuple[str, str]] | None = None
    name: str | None = None
    base = ""
    for keyword, arguments in logical_instructions(text):
        if keyword == "FROM":
            if current is not None:
                stages.append(Stage(name, base, tuple(current)))
            words = [word for word in arguments.split() if not word.startswith("--")]
            if len(words) not in (1, 3) or (len(words) == 3 and words[1].upper() != "AS"):
                raise ImageBuildError(f"cannot read FROM {arguments}")
            base, name, current = words[0], words[2] if len(words) == 3 else None, []
        elif current is not None:
            current.append((keyword, arguments))
        elif keyword != "ARG":
            raise ImageBuildError(f"{keyword} before the first FROM")
    if current is None:
        raise ImageBuildError("the Dockerfile has no FROM")
    *builders, final = [*stages, Stage(name, base, tuple(current))]
    names = [stage.name for stage in builders]
    if None in names or len(names) != len(set(names)):
        raise ImageBuildError(f"every stage but the last needs a name of its own: {names}")
    return Dockerfile(builders=tuple(builders), final=final)


def logical_instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction: comments dropped, continuation lines joined."""
    result: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        # Docker drops comment and empty lines inside a continuation too.
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        instruction, _, argument = (pending + stripped).strip().partition(" ")
        pending = ""
        result.append((instruction.upper(), argument.strip()))
    return result


def env_pairs(argument: str, env: Mapping[str, str]) -> dict[str, str]:
    """The variables one ENV instruction sets (both the KEY=value and the legacy form)."""
    parts = _words(argument, env)
    if parts and "=" not in parts[0]:
        return {parts[0]: " ".join(parts[1:])}
    return dict(part.split("=", 1) for part in parts)


_VARIABLE = re.compile(r"\$(?:\{(?P<braced>\w+)\}|(?P<bare>\w+))")


def _value(match: re.Match[str], env: Mapping[str, str]) -> str:
    name = match["braced"] or match["bare"]
    if name not in env:
        raise ImageBuildError(f"${name} is not defined at this point of the Dockerfile")
    return env[name]


def expand(text: str, env: Mapping[str, str]) -> str:
    return _VARIABLE.sub(lambda match: _value(match, env), text)


def _words(text: str, env: Mapping[str, str]) -> list[str]:
    """The words as Docker reads ENV's: split at blanks outside quotes, quotes removed, a
    backslash escaping the next character (inside double quotes only " \\ $; none inside single
    quotes), $VAR expanded except inside single quotes. shlex splits the same way (the tests
    hold it to that) but cannot expand: it forgets which parts were quoted."""
    words: list[str] = []
    word: list[str] | None = None
    quote = ""
    at = 0
    while at < len(text):
        char = text[at]
        if char.isspace() and not quote:
            if word is not None:
                words.append("".join(word))
            word = None
            at += 1
            continue
        word = [] if word is None else word
        if char in "'\"" and quote in ("", char):
            quote = "" if quote else char
            at += 1
        elif (
            char == "\\"
            and at + 1 < len(text)
            and (not quote or (quote == '"' and text[at + 1] in '"\\$'))
        ):
            word.append(text[at + 1])
            at += 2
        elif char == "$" and quote != "'" and (match := _VARIABLE.match(text, at)):
            word.append(_value(match, env))
            at = match.end()
        else:
            word.append(char)
            at += 1
    if quote:
        raise ImageBuildError(f"unterminated {quote} in: {text}")
    if word is not None:
        words.append("".join(word))
    return words


# --- the build context ------------------------------------------------------------------------


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
        body = os.path.normpath(line[1:].strip() if negated else line).lstrip("/")
        rules.append(IgnoreRule(re.compile(_glob_to_regex(body)), negated))
    return rules


def _glob_to_regex(pattern: str) -> str:
    # Go's filepath.Match, as Docker uses it: * and ? stop at "/", ** crosses directories.
    out, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**", i):
            i += 3 if pattern.startswith("**/", i) else 2
            # As moby's patternmatcher: at the end anything, elsewhere any number of folders.
            out.append(".*" if i >= len(pattern) else "(?:.*/)?")
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
    files = (path.relative_to(context).as_posix() for path in context.rglob("*") if path.is_file())
    return {name for name in files if not is_ignored(name, rules)}


def _members(sent: set[str], source: str) -> list[tuple[str, str | None]]:
    """(file, its path below the destination folder; None for a lone file) of one COPY source."""
    source = source.strip("/") if source not in ("/", ".", "./") else ""
    if source in sent:
        return [(source, None)]
    prefix = f"{source}/" if source else ""
    found: list[tuple[str, str | None]] = [
        (name, name[len(prefix) :]) for name in sorted(sent) if name.startswith(prefix)
    ]
    if not found:
        # What `docker build` says when .dockerignore (or a typo) hides the source.
        raise ImageBuildError(f"COPY failed: {source!r} not found in the build context")
    return found


def _copy_arguments(arguments: str) -> tuple[str | None, list[str], str]:
    """(stage or None, sources, destination) of one COPY; refuses flags other than --from."""
    stage = None
    while arguments.startswith("--"):
        flag, _, arguments = arguments.partition(" ")
        if not flag.startswith("--from="):
            raise ImageBuildError(f"COPY {flag} is not replayed")
        stage, arguments = flag.split("=", 1)[1], arguments.strip()
    words = json.loads(arguments) if arguments.startswith("[") else shlex.split(arguments)
    if len(words) < 2:
        raise ImageBuildError(f"COPY needs a source and a destination: {arguments}")
    return stage, words[:-1], words[-1]


# --- the cache --------------------------------------------------------------------------------


def cached(entry: Path, build: Callable[[Path], None]) -> Path:
    """`entry`, built by `build(folder)` unless complete already. One process builds it while
    the others wait on its lock; a failed build leaves nothing behind."""
    done = entry / ".complete"
    if done.exists():
        return entry
    entry.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(entry.with_name(entry.name + ".lock")):
        if done.exists():
            return entry  # another process built it while this one waited
        shutil.rmtree(entry, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(prefix=f"{entry.name}.", dir=entry.parent))
        try:
            build(staging)
            (staging / ".complete").write_text("")
            staging.rename(entry)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return entry


def _digest(*parts: str | bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(b"\0" + (part.encode() if isinstance(part, str) else part))
    return digest.hexdigest()[:20]


@cache
def python_version(python: str) -> str:
    """X.Y of the interpreter `python`."""
    if python == sys.executable:
        return f"{sys.version_info[0]}.{sys.version_info[1]}"
    version = _version_of(python)
    if version is None:
        raise ImageBuildError(f"{python} does not run")
    return version


def _version_of(python: str, *, needs: str = "sys") -> str | None:
    """X.Y of `python`; None when it cannot run or import `needs`."""
    code = f"import sys, {needs}; print('%d.%d' % sys.version_info[:2])"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        probe = subprocess.run(
            [python, "-c", code], capture_output=True, text=True, check=False, timeout=60
        )
        if probe.returncode == 0:
            return probe.stdout.strip()
    return None


def pip_layer(python: str, arguments: Sequence[str], *, cache_dir: Path = CACHE_DIR) -> Path:
    """`python -m pip install --target LAYER ARGUMENTS`, cached by the Python version, the
    arguments and the content of the requirement files they name."""
    requirements = _options(arguments, "-r", "--requirement")
    key = _digest(
        python_version(python),
        *(word for word in arguments if word not in requirements),
        *(Path(path).read_bytes() for path in requirements),
    )

    def install(staging: Path) -> None:
        argv = [python, "-m", "pip", "install", "--target", str(staging), *arguments]
        result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=900)
        if result.returncode != 0:
            raise ImageBuildError(f"{' '.join(argv)} failed:\n{result.stdout}\n{result.stderr}")

    return cached(cache_dir / f"pip-{key}", install)


def _options(words: Sequence[str], *names: str) -> list[str]:
    values = []
    for index, word in enumerate(words):
        for name in names:
            if word == name and index + 1 < len(words):
                values.append(words[index + 1])
            elif word.startswith(name + "="):
                values.append(word.split("=", 1)[1])
    return values


# --- replaying a stage ------------------------------------------------------------------------


@dataclass
class _Replay:
    """One stage's instructions replayed; `local` maps a path in the image to this machine."""

    context: Path
    sent: set[str]
    stages: Mapping[str, Path]  # the builder stages before this one, built
    local: Callable[[str], Path]
    env: dict[str, str]
    python: str  # the interpreter that will import the code (compileall, pip install)
    install: bool  # run `pip install` (else: check its pins against this interpreter)
    cache_dir: Path

    def __post_init__(self) -> None:
        self.workdir = self.env["LAMBDA_TASK_ROOT"]
        self.task_root = self.local(self.workdir)
        self.copied: list[Path] = []
        self.layers: list[Path] = []
        self.image_env: dict[str, str] = {}

    def run(self, stage: Stage) -> None:
        for keyword, raw in stage.instructions:
            arguments = expand(raw, self.env) if keyword not in ("ENV", "CMD") else raw
            if keyword == "COPY":
                self.copy(*_copy_arguments(arguments))
            elif keyword == "WORKDIR":
                self.workdir = os.path.join(self.workdir, arguments)
                self.local(self.workdir).mkdir(parents=True, exist_ok=True)
            elif keyword == "ENV":
                values = env_pairs(raw, self.env)
                self.env.update(values)
                self.image_env.update(values)
            elif keyword == "RUN":
                self.run_command(arguments)
            elif keyword not in ("ARG", "LABEL", "CMD"):
                raise ImageBuildError(f"the replay does not know {keyword}: {raw}")

    def copy(self, stage: str | None, sources: list[str], destination: str) -> None:
        if stage is not None and stage not in self.stages:
            raise ImageBuildError(f"COPY --from={stage}: no such stage before it")
        origin = self.context if stage is None else self.stages[stage]
        sent = self.sent if stage is None else context_files(origin)
        into_folder = destination.endswith("/") or len(sources) > 1
        folder = self.local(destination)
        for source in sources:
            for name, below in _members(sent, source):
                if below is not None:
                    target = folder / below
                else:
                    target = folder / Path(name).name if into_folder else folder
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin / name, target)
                self.copied.append(target)

    def run_command(self, command: str) -> None:
        words = shlex.split(command)
        if words[:2] == ["dnf", "install"]:
            packages = {word for word in words[2:] if not word.startswith("-")}
            if not packages <= KNOWN_SYSTEM_PACKAGES:
                raise ImageBuildError(f"dnf install of {sorted(packages - KNOWN_SYSTEM_PACKAGES)}")
            if shutil.which(os.environ.get("CC") or "cc") is None:
                raise ImageBuildError("the build installs gcc, and no local cc stands in for it")
        elif words[:2] in (["pip", "install"], ["pip3", "install"]):
            self.pip(words[2:])
        elif words[:2] in (["python", "-m"], ["python3", "-m"]) and len(words) > 2:
            # The generator runs with this interpreter (it has the pinned xgboost); compileall
            # with the one that will read the bytecode.
            python = {GENERATOR_MODULE: sys.executable, "compileall": self.python}.get(words[2])
            if python is None:
                raise ImageBuildError(f"the replay runs no `{command}`")
            paths = [str(self.local(w)) if w.startswith("/") else w for w in words[3:]]
            cwd = self.local(self.workdir)
            result = subprocess.run(
                [python, "-m", words[2], *paths],
                cwd=cwd,
                capture_output=True,
                text=True,
                check=False,
                timeout=600,
                env={**os.environ, "PYTHONPATH": str(cwd)},
            )
            if result.returncode != 0:
                raise ImageBuildError(f"RUN {command} failed:\n{result.stdout}\n{result.stderr}")
        else:
            raise ImageBuildError(f"the replay runs no `{command}`")

    def pip(self, arguments: list[str]) -> None:
        requirements = [self.local(path) for path in _options(arguments, "-r", "--requirement")]
        if not requirements:
            raise ImageBuildError(f"pip install without -r FILE is not replayed: {arguments}")
        if not self.install:
            for path in requirements:
                _check_pins(path)
            return
        targets = _options(arguments, "--target")
        if not targets or self.local(targets[-1]) != self.task_root:
            raise ImageBuildError("pip install must --target the task root, as the image loads it")
        # The requirement files are in the task root already (an earlier COPY put them there).
        kept: list[str] = []
        words = iter(arguments)
        for word in words:
            if word == "--target":
                next(words, None)  # and its value: the cached layer is the target
            elif not word.startswith("--target="):
                kept.append(word)
        layer = pip_layer(self.python, kept, cache_dir=self.cache_dir)
        _link_tree(layer, self.task_root)
        self.layers.append(layer)


def _check_pins(requirements: Path) -> None:
    for name, version in re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", requirements.read_text(), re.M):
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            installed = None
        if installed != version:
            raise ImageBuildError(
                f"{requirements.name} pins {name}=={version}, the local interpreter has "
                f"{installed}: the replay would not run the pinned version"
            )


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


def build_stage(
    stage: Stage,
    *,
    context: Path,
    sent: set[str],
    stages: Mapping[str, Path] | None = None,
    cache_dir: Path = CACHE_DIR,
) -> Path:
    """A builder stage's file system (absolute paths below the returned folder), cached."""
    stages = stages or {}
    material: list[str | bytes] = [python_version(sys.executable), stage.base_image]
    for keyword, arguments in stage.instructions:
        material.append(f"{keyword} {arguments}")
        if keyword == "COPY":
            origin, sources, _ = _copy_arguments(arguments)
            if origin is not None:
                material.append(stages[origin].name if origin in stages else origin)
                continue
            for source in sources:
                for name, _below in _members(sent, source):
                    material += [name, (context / name).read_bytes()]

    def replay(root: Path) -> None:
        _Replay(
            context=context,
            sent=sent,
            stages=stages,
            local=lambda path: root / path.lstrip("/"),
            env=dict(BASE_IMAGE_ENV),
            python=sys.executable,
            install=False,
            cache_dir=cache_dir,
        ).run(stage)

    return cached(cache_dir / f"stage-{_digest(*material)}", replay)


# --- the image --------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Image:
    task_root: Path
    python: str  # the interpreter the task root was laid out for
    handler: str
    env: dict[str, str]  # the final stage's ENV, and LAMBDA_TASK_ROOT
    execution_env: str | None
    copied: frozenset[str]  # what the final stage's COPY steps wrote, below the task root
    layers: tuple[Path, ...]  # the cached pip --target output of each pip RUN step

    def process_env(self) -> dict[str, str]:
        """A fresh process's environment, as in Lambda: nothing of the caller's."""
        return {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "TZ": ":UTC", **self.env}


def build_image(
    context: Path,
    task_root: Path,
    *,
    python: str = sys.executable,
    install: bool = True,
    cache_dir: Path = CACHE_DIR,
) -> Image:
    """The image's task root laid out in `task_root` (emptied first) from the build context:
    the builder stages replayed (cached), then the final stage's steps for `python`. Without
    `install`, the pip steps are checked against this interpreter instead of run."""
    dockerfile = read_dockerfile(context)
    sent = context_files(context)
    stages: dict[str, Path] = {}
    for stage in dockerfile.builders:
        stages[str(stage.name)] = build_stage(
            stage, context=context, sent=sent, stages=stages, cache_dir=cache_dir
        )
    shutil.rmtree(task_root, ignore_errors=True)
    task_root.mkdir(parents=True)

    def inside(path: str) -> Path:
        if not Path(path).is_relative_to(task_root):
            raise ImageBuildError(f"the final stage writes outside the task root: {path}")
        return Path(path)

    replay = _Replay(
        context=context,
        sent=sent,
        stages=stages,
        local=inside,
        env={**BASE_IMAGE_ENV, "LAMBDA_TASK_ROOT": str(task_root)},
        python=python,
        install=install,
        cache_dir=cache_dir,
    )
    replay.run(dockerfile.final)
    return Image(
        task_root=task_root,
        python=python,
        handler=dockerfile.handler,
        env={"LAMBDA_TASK_ROOT": str(task_root), **replay.image_env},
        execution_env=dockerfile.execution_env,
        copied=frozenset(path.relative_to(task_root).as_posix() for path in replay.copied),
        layers=tuple(replay.layers),
    )


def find_python(version: tuple[int, int]) -> str | None:
    """An interpreter of `version` with pip: on PATH, else one of pyenv's versions."""
    name = f"python{version[0]}.{version[1]}"
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    installed = sorted(pyenv.glob(f"{version[0]}.{version[1]}*"), reverse=True)
    candidates = [shutil.which(name), *(str(path / "bin" / name) for path in installed)]
    for candidate in dict.fromkeys(filter(None, candidates)):
        # pyenv's shims exist for every installed version but fail unless it is selected.
        if _version_of(candidate, needs="pip") == f"{version[0]}.{version[1]}":
            return candidate
    return None
