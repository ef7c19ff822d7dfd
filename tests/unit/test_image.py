"""The handler image, simulated: the Dockerfile's own COPY/RUN/ENV/CMD replayed into a task root
with the image's Python, and the CMD run by the Lambda runtime interface client (awslambdaric)
in an interpreter that sees only that root and the runtime's directory."""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from ml_handler.config import HandlerConfig
from ml_handler.service import InferenceService

from localurl import image as image_model
from localurl.image import Dockerfile, Image, ImageBuildError, build_image, read_dockerfile
from tests.unit import image_runtime
from tests.unit.events import FakeContext, function_url_event, post

# One worker builds this module's session fixtures (pytest-xdist --dist loadgroup).
pytestmark = pytest.mark.xdist_group("image")

MIN_PYTHON = (3, 12)
PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[A-Za-z0-9.+!-]+)$")
FORBIDDEN = {"xgboost", "pandas", "scikit-learn", "sklearn"}


@pytest.fixture(scope="session")
def dockerfile(handler_dir: Path) -> Dockerfile:
    return read_dockerfile(handler_dir)


@pytest.fixture(scope="session")
def image_python(dockerfile: Dockerfile) -> str:
    version = dockerfile.python_version
    found = image_model.find_python(version) if version else None
    if found:
        return found
    # Said out loud, in the warnings summary: the run is weaker than it looks, not skipped.
    wanted = f"python{version[0]}.{version[1]}" if version else "the image's Python"
    warnings.warn(
        f"no {wanted} with pip on PATH or in pyenv: simulating the image with the "
        f"current interpreter {sys.version.split()[0]} ({sys.executable}) instead",
        stacklevel=1,
    )
    return sys.executable


@pytest.fixture(scope="session")
def image(handler_dir, image_python, tmp_path_factory) -> Image:
    return build_image(handler_dir, tmp_path_factory.mktemp("image") / "task", python=image_python)


@pytest.fixture(scope="session")
def in_process() -> InferenceService:
    # An empty environment: the bundled model and the defaults, as in the image.
    return InferenceService.from_config(HandlerConfig.from_env({}))


def copy_context(handler_dir: Path, destination: Path) -> Path:
    shutil.copytree(handler_dir, destination, ignore=shutil.ignore_patterns("__pycache__"))
    return destination


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}: the negative test no longer edits anything"
    path.write_text(text.replace(old, new))


# --- what the Dockerfile and requirements declare ---------------------------------------------


def test_dockerfile_base_is_lambda_python_at_least_312(dockerfile):
    assert image_model.LAMBDA_PYTHON_BASE.match(dockerfile.base_image), dockerfile.base_image
    assert dockerfile.python_version is not None
    assert dockerfile.python_version >= MIN_PYTHON


def test_dockerfile_cmd_names_lambda_handler_function(dockerfile):
    assert dockerfile.handler == "ml_handler.app.lambda_handler"


def test_requirements_pin_every_dependency_exactly_without_heavy_packages(handler_dir):
    lines = [
        line.split("#", 1)[0].strip()
        for line in (handler_dir / "requirements.txt").read_text().splitlines()
    ]
    pins = [line for line in lines if line]
    assert pins, "requirements.txt pins nothing"
    names = set()
    for pin in pins:
        match = PIN.match(pin)
        assert match, f"{pin!r} is not an exact name==version pin"
        names.add(match["name"].lower().replace("_", "-"))
    # The compiled library serves the model: xgboost and its numerics stay in the builder stage.
    heavy = FORBIDDEN | {"xgboost-cpu", "numpy", "scipy"}
    assert not names & heavy, f"the image must not install {sorted(names & heavy)}"


def test_builder_requirements_pin_the_generators_xgboost(handler_dir):
    text = (handler_dir / "requirements-build.txt").read_text()
    pins = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    names = {PIN.match(pin)["name"] for pin in pins if pin and PIN.match(pin)}
    assert len(names) == len([pin for pin in pins if pin]), "a build pin is not name==version"
    assert "xgboost-cpu" in names


# --- the simulated image ----------------------------------------------------------------------


def test_task_root_holds_only_what_dockerfile_copies(image, handler_dir):
    expected = {"requirements.txt", "model/model.so"} | {
        f"ml_handler/{path.name}" for path in (handler_dir / "ml_handler").glob("*.py")
    }
    assert image.copied == expected
    ours = {
        path.relative_to(image.task_root).as_posix()
        for folder in ("ml_handler", "model")
        for path in (image.task_root / folder).rglob("*")
        if path.is_file() and path.parent.name != "__pycache__"  # the compileall RUN step's
    }
    assert ours == expected - {"requirements.txt"}
    # Everything else at the top of the task root came from the pip RUN step.
    (layer,) = image.layers
    installed = {path.name for path in layer.iterdir()} - {".complete"}
    top_level = {path.name for path in image.task_root.iterdir()}
    assert top_level == installed | {"requirements.txt", "ml_handler", "model"}


def test_image_ships_bytecode_of_every_handler_module_for_its_python(image):
    """/var/task is read-only on Lambda: bytecode missing from the image (or written by another
    Python, or checked against sources) means a compile or a stat at every cold start."""
    probe = subprocess.run(
        [image.python, "-c", "import importlib.util, sys; "
         "print(sys.implementation.cache_tag); print(importlib.util.MAGIC_NUMBER.hex())"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    cache_tag, magic = probe
    sources = sorted((image.task_root / "ml_handler").glob("*.py"))
    assert sources
    for source in sources:
        cached = source.parent / "__pycache__" / f"{source.stem}.{cache_tag}.pyc"
        assert cached.is_file(), f"{cached.name}: no bytecode for {source.name}"
        header = cached.read_bytes()[:16]
        assert header[:4].hex() == magic, f"{cached.name} was compiled by another Python"
        # PEP 552 flags: bit 0 hash-based, bit 1 check_source. Unchecked hash: 0b01.
        assert int.from_bytes(header[4:8], "little") == 0b01, f"{cached.name} is not unchecked-hash"


def test_image_env_set_from_dockerfile(image):
    assert "BOOSTER_NTHREAD" not in image.env  # nothing in the image reads it
    assert image.env["LAMBDA_TASK_ROOT"] == str(image.task_root)


def test_simulated_image_answers_like_in_process_handler(image, dockerfile, in_process, samples):
    names = list(samples[0])
    events = [
        post(samples),
        post([[sample[name] for name in names] for sample in samples]),
        function_url_event("GET"),
    ]
    run = image_runtime.invoke(image, events)
    assert run.returncode == 0, run.stderr + run.stdout
    assert run.init_error is None
    assert run.errors == [None, None, None]
    if image.python != sys.executable:
        major, minor = dockerfile.python_version
        assert run.python.startswith(f"{major}.{minor}.")
    expected = [in_process.handle(event, FakeContext()) for event in events]
    assert [response["statusCode"] for response in run.responses] == [200, 200, 200]
    # The GET reports what the function was told by its (real) runtime context; the in-process
    # reference has no such context, so that block is checked against the runtime's settings.
    got_meta, want_meta = (json.loads(r.pop("body")) for r in (run.responses[2], expected[2]))
    told = got_meta.pop("function")
    assert want_meta.pop("function")["invoked_function_arn"] is None
    assert told["invoked_function_arn"] == image_runtime.FUNCTION_ARN
    assert told["memory_limit_in_mb"] == image_runtime.MEMORY_MB
    assert 0 < told["remaining_time_in_millis"] <= image_runtime.TIMEOUT_SECONDS * 1000
    assert got_meta == want_meta
    assert run.responses == expected
    predictions = json.loads(run.responses[0]["body"])
    assert len(predictions) == len(samples)
    # One log line per invocation, on stdout, as the runtime forwards it to CloudWatch.
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert [line["request_id"] for line in lines] == ["sim-0", "sim-1", "sim-2"]


def test_simulated_image_imports_nothing_from_outside_task_root(image, samples):
    """Only the task root, the standard library and the base image's runtime directory (the
    runtime client) are loaded from; the handler's packages all come from the task root."""
    # The GET imports orjson, which a plain POST (the library's fast path) never needs.
    run = image_runtime.invoke(image, [post(samples), function_url_event("GET")])
    assert run.returncode == 0, run.stderr + run.stdout
    outside = {
        name: path
        for name, path in run.modules.items()
        if path
        and not path.startswith(str(image.task_root))
        and not path.startswith(run.runtime_dir)
        and not any(path.startswith(folder) for folder in run.stdlib)
    }
    assert outside == {}
    for package in ("ml_handler", "orjson"):
        assert run.modules[package].startswith(str(image.task_root)), package
    # The image serves the compiled library: nothing of xgboost's stack is even importable.
    assert not {"xgboost", "numpy", "scipy"} & set(run.modules)
    # The CMD was run by the runtime interface client, native Runtime API client included.
    for module in ("awslambdaric.bootstrap", "runtime_client"):
        assert run.modules[module].startswith(run.runtime_dir), module


# Each costs a cold start milliseconds and the compiled path needs none of them: orjson (and json,
# dataclasses, uuid, which it imports) only on the paths that use it (GET, errors, full parser).
COLD_START_AVOIDS = (
    "typing",
    "pathlib",
    "traceback",
    "base64",
    "numpy",
    "xgboost",
    "ctypes.util",
    "orjson",
    "json",
    "dataclasses",
    "uuid",
)


def test_handler_init_imports_nothing_a_cold_start_can_skip(image):
    """The image's init (import + compiled model load, as a fresh process does at a cold start)
    leaves out the modules that only the xgboost path, errors or typing need."""
    script = (
        f"import sys; sys.path.insert(0, {str(image.task_root)!r}); import ml_handler.app; "
        "print(' '.join(sorted(sys.modules)))"
    )
    run = subprocess.run(
        [image.python, "-I", "-S", "-B", "-c", script],
        cwd=image.task_root,
        env=image.process_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    loaded = set(run.stdout.split())
    assert "ml_handler.compiled_model" in loaded  # the model was loaded: init ran
    assert sorted(loaded & set(COLD_START_AVOIDS)) == []


# --- negative checks: the simulation notices a broken image -----------------------------------


def test_simulated_image_fails_when_dependency_dropped(handler_dir, image_python, tmp_path):
    context = copy_context(handler_dir, tmp_path / "context")
    edit(context / "requirements.txt", "orjson==", "# dropped: orjson==")
    image = build_image(context, tmp_path / "task", python=image_python)
    run = image_runtime.invoke(image, [post([{}])])
    assert run.returncode != 0
    # Init needs no orjson (imported on first use): the first request that does fails.
    (error,) = [error for error in run.errors if error]
    assert "No module named 'orjson'" in str(error["errorMessage"])


def test_simulated_image_fails_when_cmd_names_wrong_module(handler_dir, image_python, tmp_path):
    context = copy_context(handler_dir, tmp_path / "context")
    edit(
        context / "Dockerfile",
        '"ml_handler.app.lambda_handler"',
        '"ml_handler.main.lambda_handler"',
    )
    image = build_image(context, tmp_path / "task", python=image_python)
    run = image_runtime.invoke(image, [function_url_event("GET")])
    assert run.returncode != 0
    assert run.init_error is not None
    # What the runtime client reports in the image (to /runtime/init/error).
    assert run.init_error.startswith("Runtime.ImportModuleError: ")
    assert "ml_handler.main" in run.init_error


def test_simulated_image_fails_when_model_not_copied(handler_dir, image_python, tmp_path):
    context = copy_context(handler_dir, tmp_path / "context")
    edit(context / "Dockerfile", "COPY --from=builder", "# COPY --from=builder")
    image = build_image(context, tmp_path / "task", python=image_python)
    assert not (image.task_root / "model").exists()
    run = image_runtime.invoke(image, [function_url_event("GET")])
    assert run.returncode != 0
    assert run.init_error is not None
    assert "ModelLoadError" in run.init_error


@pytest.mark.parametrize(
    ("path", "old", "new", "refusal"),
    [
        ("Dockerfile", "COPY model/model.ubj", "# COPY", r"model_compiler.*model/model\.ubj"),
        ("Dockerfile", "dnf install -y gcc", "dnf install -y gcc cmake", "cmake"),
        (
            "requirements-build.txt",
            "xgboost-cpu==3.2.0",
            "xgboost-cpu==3.1.0",
            r"xgboost-cpu==3\.1\.0",
        ),
        (".dockerignore", "!model/model.ubj", "", r"model/model\.ubj"),
    ],
    ids=[
        "builder-stage-lacks-the-model",
        "builder-step-it-cannot-replay",
        "builder-pin-the-local-generator-lacks",
        "dockerignore-hides-a-copied-file",
    ],
)
def test_build_fails_when_the_builder_would(
    handler_dir, image_python, tmp_path, path, old, new, refusal
):
    """The builder stage fails as `docker build` would (or refuses what it cannot replay), with
    the file, package or pin named."""
    context = copy_context(handler_dir, tmp_path / "context")
    edit(context / path, old, new)
    with pytest.raises(ImageBuildError, match=refusal):
        build_image(context, tmp_path / "task", python=image_python)


def test_dockerignore_excludes_files_inside_copied_folder(handler_dir, image_python, tmp_path):
    context = copy_context(handler_dir, tmp_path / "context")
    (context / "ml_handler" / "notes.txt").write_text("not code")
    (context / "ml_handler" / "__pycache__").mkdir()
    (context / "ml_handler" / "__pycache__" / "app.cpython-312.pyc").write_bytes(b"stale")
    (context / "ml_handler" / "sub").mkdir()
    (context / "ml_handler" / "sub" / "deep.py").write_text("")
    image = build_image(context, tmp_path / "task", python=image_python)
    copied = {Path(path).name for path in image.copied if path.startswith("ml_handler/")}
    assert copied == {path.name for path in (handler_dir / "ml_handler").glob("*.py")}
    assert not (image.task_root / "ml_handler" / "sub").exists()
    # The image's own bytecode, compiled from the copied sources, not the context's stale file.
    for cached in (image.task_root / "ml_handler" / "__pycache__").iterdir():
        assert cached.read_bytes() != b"stale", cached.name


@pytest.mark.parametrize(
    ("path", "ignored"),
    [
        ("Dockerfile", False),
        ("ml_handler/app.py", False),
        ("ml_handler/__pycache__/app.cpython-312.pyc", True),
        ("ml_handler/sub/deep.py", True),
        ("model/model.ubj", False),
        ("model/model_card.json", True),
        (".dockerignore", True),
        ("cdk.out/asset.txt", True),
    ],
)
def test_dockerignore_rules_follow_docker_last_match_wins(handler_dir, path, ignored):
    rules = image_model.parse_dockerignore((handler_dir / ".dockerignore").read_text())
    assert image_model.is_ignored(path, rules) is ignored


@pytest.mark.parametrize(
    ("pattern", "path", "ignored"),
    [
        ("**/*.go", "a.go", True),
        ("**/*.go", "x/y/a.go", True),
        ("a/**/c", "a/c", True),
        ("a/**/c", "a/b/d/c", True),
        ("a/**", "a/b/c", True),
        ("**.py", "a.py", False),  # "**" before more pattern is "(.*/)?": whole folders only
        ("**.py", "x/.py", True),
        ("*.md", "docs/x.md", False),  # anchored at the context root, unlike .gitignore
    ],
)
def test_dockerignore_double_star_matches_as_docker_does(pattern, path, ignored):
    """Expected values from moby's patternmatcher, which reads .dockerignore for Docker."""
    assert image_model.is_ignored(path, image_model.parse_dockerignore(pattern)) is ignored


def _stage_metadata(stage: Path) -> dict[str, object]:
    import ctypes

    library = ctypes.CDLL(str(stage / "build" / "model.so"))
    library.ml_metadata.restype = ctypes.c_char_p
    return json.loads(library.ml_metadata())


def test_builder_stage_rebuilds_when_its_model_or_generator_changes(
    handler_dir, small_model_paths, tmp_path
):
    """The stage cache is keyed by what the stage reads: a stale model.so is never reused for a
    new model or a changed generator, and an unchanged stage is not rebuilt."""
    context = copy_context(handler_dir, tmp_path / "context")
    shutil.copy(small_model_paths["ubj"], context / "model" / "model.ubj")
    (builder,) = read_dockerfile(context).builders
    cache = tmp_path / "cache"

    def build() -> Path:
        return image_model.build_stage(
            builder, context=context, sent=image_model.context_files(context), cache_dir=cache
        )

    first = build()
    library = first / "build" / "model.so"
    built_at = library.stat().st_mtime_ns
    assert build() == first  # cached...
    assert library.stat().st_mtime_ns == built_at  # ...not rebuilt
    assert (
        _stage_metadata(first)["model_sha256"]
        == hashlib.sha256(small_model_paths["ubj"].read_bytes()).hexdigest()
    )

    # WHEN the model changes (same booster, JSON bytes): a new stage serves the new file's hash
    shutil.copy(small_model_paths["json"], context / "model" / "model.ubj")
    second = build()
    assert second != first
    assert (
        _stage_metadata(second)["model_sha256"]
        == hashlib.sha256(small_model_paths["json"].read_bytes()).hexdigest()
    )

    # WHEN only the generator's source changes: rebuilt too
    support = context / "model_compiler" / "support.c"
    support.write_text(support.read_text() + "\n/* a change */\n")
    assert build() not in (first, second)


def test_cache_builds_an_entry_once_when_workers_ask_at_the_same_time(tmp_path):
    """Two test workers (pytest-xdist) asking for one stage at once: one builds it under the
    lock, the other waits and reuses it; a failed build leaves nothing a later call could use."""
    builds: list[Path] = []
    both_asking = threading.Barrier(2)

    def build(folder: Path) -> None:
        builds.append(folder)
        time.sleep(0.3)  # long enough for the other worker to arrive mid-build
        (folder / "model.so").write_text("built once")

    def worker(results: list[Path]) -> None:
        both_asking.wait()
        results.append(image_model.cached(tmp_path / "stage", build))

    results: list[Path] = []
    workers = [threading.Thread(target=worker, args=(results,)) for _ in range(2)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(timeout=30)
    assert len(builds) == 1
    assert results == [tmp_path / "stage"] * 2
    assert (tmp_path / "stage" / "model.so").read_text() == "built once"

    def broken(folder: Path) -> None:
        (folder / "half").write_text("")
        raise ImageBuildError("the compiler failed")

    with pytest.raises(ImageBuildError):
        image_model.cached(tmp_path / "other", broken)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["other.lock", "stage", "stage.lock"]


@pytest.mark.parametrize(
    ("dockerfile", "refusal"),
    [
        ("", "no FROM"),
        ("RUN true\nFROM base", "RUN before the first FROM"),
        ("FROM base AS\nCMD ['h']", "cannot read FROM"),
        ("FROM a\nFROM base\nCMD ['h']", "needs a name of its own"),
        ("FROM a AS b\nFROM c AS b\nFROM base\nCMD ['h']", "needs a name of its own"),
        ("FROM base", "no CMD"),
        ('FROM base\nCMD ["one.h", "two.h"]', "exactly one handler"),
        ("FROM base\nCOPY --chown=1 f.txt ${LAMBDA_TASK_ROOT}/\nCMD h", "--chown=1 is not"),
        ("FROM base\nCOPY f.txt\nCMD h", "needs a source and a destination"),
        ("FROM base\nCOPY missing.txt ${LAMBDA_TASK_ROOT}/\nCMD h", "'missing.txt' not found"),
        ("FROM base\nCOPY --from=nope /x ${LAMBDA_TASK_ROOT}/\nCMD h", "no such stage before"),
        ("FROM base\nCOPY f.txt /opt/f.txt\nCMD h", "outside the task root"),
        ("FROM base\nENV A=$UNSET\nCMD h", r"\$UNSET is not defined"),
        ("FROM base\nUSER nobody\nCMD h", "does not know USER"),
        ("FROM base\nRUN make\nCMD h", "runs no `make`"),
        ("FROM base\nRUN python -m pytest\nCMD h", "runs no `python -m pytest`"),
        ("FROM base\nRUN pip install orjson\nCMD h", "without -r FILE"),
        (
            "FROM base\nCOPY r.txt ${LAMBDA_TASK_ROOT}/\n"
            "RUN pip install --target ${LAMBDA_TASK_ROOT}/sub -r ${LAMBDA_TASK_ROOT}/r.txt\nCMD h",
            "must --target the task root",
        ),
    ],
)
def test_replay_refuses_what_it_cannot_replay_by_name(tmp_path, dockerfile, refusal):
    """A Dockerfile the replay does not understand fails the build with the instruction named,
    before anything runs: the stand-in never serves an image Docker would build differently."""
    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text(dockerfile.replace("'", '"'))
    (context / "f.txt").write_text("f")
    (context / "r.txt").write_text("# nothing pinned\n")
    with pytest.raises(ImageBuildError, match=refusal):
        build_image(context, tmp_path / "task", cache_dir=tmp_path / "cache")


def test_replay_copies_the_exec_form_and_expands_env_into_the_image_env(tmp_path):
    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text(
        "FROM public.ecr.aws/lambda/python:3.12\n"
        'COPY ["f.txt", "${LAMBDA_TASK_ROOT}/data/"]\n'
        "ENV DATA=${LAMBDA_TASK_ROOT}/data \\\n"
        "    # Docker drops a comment line inside a continuation\n"
        "    LEVEL='info $NOT_EXPANDED'\n"
        "WORKDIR ${LAMBDA_TASK_ROOT}/work\n"
        'CMD ["app.handler"]\n'
    )
    (context / "f.txt").write_text("f")
    task = tmp_path / "task"
    image = build_image(context, task, install=False, cache_dir=tmp_path / "cache")
    assert image.copied == {"data/f.txt"}
    assert (task / "data" / "f.txt").read_text() == "f"
    assert image.env == {
        "LAMBDA_TASK_ROOT": str(task),
        "DATA": f"{task}/data",
        "LEVEL": "info $NOT_EXPANDED",
    }
    assert (image.handler, image.execution_env) == ("app.handler", "AWS_Lambda_python3.12")
    assert (task / "work").is_dir()


@given(st.text(alphabet="ab= \t'\"\\", max_size=24))
def test_env_words_split_and_unquote_as_shlex_does(text):
    """Property: without $ (which shlex leaves alone), ENV's words are shlex's POSIX words: the
    same splitting at blanks, quote removal and backslash escapes (the library as the oracle)."""
    try:
        expected = shlex.split(text)
    except ValueError:  # an unterminated quote or a trailing backslash
        assume(False)
    assert image_model._words(text, {}) == expected


@pytest.mark.parametrize(
    ("argument", "pairs"),
    [
        ("A=$X B='$X' C=\"$X\" D=\\$X", {"A": "x y", "B": "$X", "C": "x y", "D": "$X"}),
        ("A=${X}z 'B=it is'", {"A": "x yz", "B": "it is"}),
        ("LEGACY $X and 'more'", {"LEGACY": "x y and more"}),
    ],
)
def test_env_expands_outside_single_quotes_only(argument, pairs):
    """Docker's reading of ENV: a substituted value stays one word, single quotes keep $ as is."""
    assert image_model.env_pairs(argument, {"X": "x y"}) == pairs


def test_env_refuses_an_unterminated_quote():
    with pytest.raises(ImageBuildError, match="unterminated '"):
        image_model.env_pairs("A='open", {})
