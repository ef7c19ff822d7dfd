"""The installable client: what `pip install .` builds holds the client and nothing else, and its
`ml-invoke`, installed into a clean venv, signs a real call to the local stand-in.

The distributions are built as a user's installer builds them (sdist, then the wheel from the
sdist), with the pinned backend from the dev environment (`--no-build-isolation`: no download).
The venvs are uv's, without site packages. Two resolutions: the dev pins (constraints.txt),
installed offline from the uv cache the tox env was built from (the PR gate touches no registry),
and the lowest versions that pyproject.toml admits for the client's own dependencies, so its lower
bounds are tried, not hoped. The second needs the registry, so the scheduled workflow runs it
(`tox -e client-lowest`, which sets CLIENT_WHEEL_RESOLUTIONS=pinned,lowest).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pytest
from ml_handler.config import DEFAULT_MAX_ROWS
from ml_handler.logs import RequestLogger
from ml_handler.model import load_model
from ml_handler.service import InferenceService
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version
from uv import find_uv_bin

from localurl.deploy import DeployedStack, LocalSystem
from localurl.moto_service import OPERATOR_KEY_ID, OPERATOR_SECRET
from localurl.synth import SynthesizedStack

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
DIST_NAME = "cdk-ml-lambda"
# The contract: the client needs these and only these (botocore: imported directly).
CLIENT_REQUIREMENTS = {"boto3", "botocore", "requests", "requests-aws4auth"}
# What must never come along with the client: the CDK app, handler and stand-in, by module.
NOT_SHIPPED_MODULES = ("infra", "localurl", "ml_handler", "training", "tests", "bench", "app")


def _pins(path: Path) -> dict[str, str]:
    """`name==version` lines of a requirements/constraints file, by canonical name."""
    pins = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if "==" in line and not line.startswith("-"):
            requirement = Requirement(line)
            (specifier,) = requirement.specifier
            pins[canonicalize_name(requirement.name)] = specifier.version
    return pins


DEV_PINS = _pins(ROOT / "requirements-dev.txt")
CONSTRAINTS = _pins(ROOT / "constraints.txt")


def _env(**extra: str) -> dict[str, str]:
    """The caller's environment less anything that would reach into the dev venv or AWS."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "UV_", "PYTHON", "PIP_")) and k != "VIRTUAL_ENV"
    }
    if "UV_CACHE_DIR" in os.environ:  # the cache the pinned resolution installs from, offline
        env["UV_CACHE_DIR"] = os.environ["UV_CACHE_DIR"]
    # Never download an interpreter: the venv is made with the one running the tests.
    env["UV_PYTHON_DOWNLOADS"] = "never"
    env["UV_NO_CONFIG"] = "1"
    return {**env, **extra}


def _run(args: list[str | Path], *, cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"{args} failed:\n{result.stdout[-2000:]}{result.stderr[-3000:]}"
    return result.stdout


@dataclass(frozen=True, kw_only=True)
class Dists:
    sdist: Path
    wheel: Path  # built from the tree
    wheel_from_sdist: Path
    left_in_checkout: set[str]  # what building added to the project root


@dataclass(frozen=True, kw_only=True)
class ClientVenv:
    resolution: str
    python: Path
    ml_invoke: Path
    workdir: Path  # a directory without the project in it, to run from

    def installed(self) -> dict[str, str]:
        """The venv's distributions, name -> version (from its own metadata)."""
        code = (
            "import importlib.metadata as m, json; "
            "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))"
        )
        out = _run([self.python, "-c", code], cwd=self.workdir, env=_env())
        return {canonicalize_name(k): v for k, v in json.loads(out).items()}


def _build(source: Path, out: Path, *kinds: str) -> None:
    """uv as the build frontend, with the dev environment's (pinned) backend: nothing downloaded."""
    _run(
        [
            find_uv_bin(),
            "build",
            *kinds,
            "--no-build-isolation",
            "--python",
            sys.executable,
            "--out-dir",
            out,
            source,
        ],
        cwd=ROOT,
        env=_env(),
    )


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Dists:
    """The wheel as `pip install .` or a `git+` URL builds it (from the tree), and the sdist."""
    out, from_sdist = tmp_path_factory.mktemp("dist"), tmp_path_factory.mktemp("from-sdist")
    before = {p.name for p in ROOT.iterdir()}
    _build(ROOT, out, "--sdist", "--wheel")
    left = {p.name for p in ROOT.iterdir()} - before
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    _build(sdist, from_sdist, "--wheel")
    (wheel_from_sdist,) = from_sdist.glob("*.whl")
    return Dists(sdist=sdist, wheel=wheel, wheel_from_sdist=wheel_from_sdist, left_in_checkout=left)


def _resolutions() -> list[str]:
    names = os.environ.get("CLIENT_WHEEL_RESOLUTIONS", "pinned").split(",")
    unknown = set(names) - {"pinned", "lowest"}
    if unknown:
        raise ValueError(f"CLIENT_WHEEL_RESOLUTIONS: unknown {sorted(unknown)}")
    return names


@pytest.fixture(scope="module", params=_resolutions())
def client_venv(
    request: pytest.FixtureRequest, dists: Dists, tmp_path_factory: pytest.TempPathFactory
) -> ClientVenv:
    """A clean venv with the wheel and its dependencies installed by uv.

    "pinned": spelled as the README tells callers (`cdk-ml-lambda[client] @ URL`), dependencies
    held to the dev pins. "lowest": the bare wheel, its direct dependencies at the lowest versions
    pyproject.toml allows.
    """
    resolution: str = request.param
    workdir = tmp_path_factory.mktemp(f"client-{resolution}")
    venv = workdir / "venv"
    uv = find_uv_bin()
    _run([uv, "venv", "--python", sys.executable, venv], cwd=workdir, env=_env())
    python = venv / "bin" / "python"
    if resolution == "pinned":
        install = [
            f"{DIST_NAME}[client] @ {dists.wheel.as_uri()}",
            "--constraint",
            ROOT / "constraints.txt",
            "--offline",
        ]
    else:
        # Named on the command line, the client's requirements are direct: lowest-direct takes
        # the lowest version of each that pyproject.toml allows (the rest: the newest that fits).
        install = [
            dists.wheel,
            *PYPROJECT["project"]["dependencies"],
            "--resolution",
            "lowest-direct",
        ]
    _run([uv, "pip", "install", "--python", python, *install], cwd=workdir, env=_env())
    return ClientVenv(
        resolution=resolution, python=python, ml_invoke=venv / "bin" / "ml-invoke", workdir=workdir
    )


@pytest.fixture(scope="module")
def deployed(system: LocalSystem, stand_in_assembly: SynthesizedStack) -> DeployedStack:
    return system.deploy(stand_in_assembly)


# --- what is built -----------------------------------------------------------------------------


def _top_level(names: list[str]) -> set[str]:
    return {PurePosixPath(name).parts[0] for name in names}


def test_wheel_holds_only_the_client_package(dists: Dists) -> None:
    with zipfile.ZipFile(dists.wheel) as wheel:
        names = wheel.namelist()
        (metadata_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        (entry_points_name,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        entry_points = wheel.read(entry_points_name).decode()

    assert _top_level(names) == {"client", PurePosixPath(metadata_name).parts[0]}
    assert "client/cli.py" in names
    assert "client/py.typed" in names
    assert "ml-invoke = client.cli:main" in entry_points.splitlines()


def test_building_leaves_nothing_in_the_checkout(dists: Dists) -> None:
    """No build/, *.egg-info or dist/ for a contributor to commit or for ruff and mypy to read."""
    assert dists.left_in_checkout == set()


def test_wheel_from_the_sdist_is_the_wheel_from_the_tree(dists: Dists) -> None:
    with zipfile.ZipFile(dists.wheel) as tree, zipfile.ZipFile(dists.wheel_from_sdist) as sdist:
        assert sorted(sdist.namelist()) == sorted(tree.namelist())


def test_sdist_holds_only_what_the_client_wheel_needs(dists: Dists) -> None:
    with tarfile.open(dists.sdist) as sdist:
        # Members are "<name>-<version>/<path>"; what is under the root is what counts.
        members = [PurePosixPath(*PurePosixPath(m).parts[1:]) for m in sdist.getnames()]
    top = {m.parts[0] for m in members if m.parts}

    assert top <= {"client", "README.md", "pyproject.toml", "PKG-INFO", ".gitignore"}
    assert "client" in top
    assert not top & set(NOT_SHIPPED_MODULES)


def test_wheel_requires_only_the_clients_dependencies(dists: Dists) -> None:
    with zipfile.ZipFile(dists.wheel) as wheel:
        (metadata_name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = wheel.read(metadata_name).decode()
    requirements = [
        Requirement(line.removeprefix("Requires-Dist:").strip())
        for line in metadata.splitlines()
        if line.startswith("Requires-Dist:")
    ]
    base = {f"{canonicalize_name(r.name)}{r.specifier}" for r in requirements if r.marker is None}
    client_extra = {
        f"{canonicalize_name(r.name)}{r.specifier}"
        for r in requirements
        if r.marker is not None and r.marker.evaluate({"extra": "client"})
    }

    assert {Requirement(r).name for r in base} == CLIENT_REQUIREMENTS
    # `[client]` is the spelling callers use: the same requirements, nothing more, none looser.
    assert client_extra == base
    assert "Provides-Extra: client" in metadata.splitlines()


def test_client_dependency_ranges_admit_the_dev_pins() -> None:
    """The gate tests the client with the dev pins: they must be versions a user can get too."""
    project = PYPROJECT["project"]
    declared = [*project["dependencies"], *project["optional-dependencies"]["client"]]
    for line in declared:
        requirement = Requirement(line)
        pinned = DEV_PINS.get(canonicalize_name(requirement.name))
        assert pinned is not None, f"{requirement.name} is not pinned in requirements-dev.txt"
        assert requirement.specifier.contains(pinned), f"{line} excludes the dev pin {pinned}"


def test_build_backend_is_the_pinned_one() -> None:
    """The backend an installer fetches for `pip install .` is the one the tests build with."""
    (requirement,) = (Requirement(r) for r in PYPROJECT["build-system"]["requires"])
    (specifier,) = requirement.specifier
    name = canonicalize_name(requirement.name)

    assert specifier.operator == "=="
    assert DEV_PINS.get(name) == CONSTRAINTS.get(name) == specifier.version


# --- what is installed -------------------------------------------------------------------------


def test_installed_client_brings_nothing_of_the_app(client_venv: ClientVenv) -> None:
    installed = client_venv.installed()
    dev_only = {name for name in DEV_PINS if name not in CLIENT_REQUIREMENTS}

    assert DIST_NAME in installed
    assert set(installed) >= CLIENT_REQUIREMENTS
    assert not dev_only & set(installed), "dev-only packages came with the client"
    code = (
        "import importlib.util as u, json, sys, client; "
        "print(json.dumps([client.__file__, [m for m in sys.argv[1:] if u.find_spec(m)]]))"
    )
    out = _run(
        [client_venv.python, "-c", code, *NOT_SHIPPED_MODULES], cwd=client_venv.workdir, env=_env()
    )
    client_file, importable = json.loads(out)
    assert Path(client_file).is_relative_to(client_venv.python.parent.parent)
    assert importable == []


def test_installed_client_meets_the_resolution(client_venv: ClientVenv) -> None:
    """The venv really has the versions the resolution stands for (else the test proves less)."""
    installed = client_venv.installed()
    requirements = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]
    for requirement in requirements:
        name = canonicalize_name(requirement.name)
        if client_venv.resolution == "pinned":
            assert installed[name] == CONSTRAINTS[name]
        else:
            (lower,) = (s for s in requirement.specifier if s.operator == ">=")
            assert Version(installed[name]) == Version(lower.version), (
                f"{name} {installed[name]}: not the lowest allowed ({requirement.specifier})"
            )


def test_ml_invoke_help_runs_from_the_install(client_venv: ClientVenv) -> None:
    out = _run([client_venv.ml_invoke, "--help"], cwd=client_venv.workdir, env=_env())

    assert out.startswith("usage: ml-invoke ")
    assert "--outputs-file" in out
    assert "exit codes:" in out


def test_ml_invoke_gets_the_handlers_predictions_from_the_stand_in(
    client_venv: ClientVenv,
    system: LocalSystem,
    deployed: DeployedStack,
    samples_path: Path,
    bundled_model_path: Path,
) -> None:
    """GIVEN the app deployed to the local stand-in (AuthType AWS_IAM, moto's STS and IAM)
    WHEN the installed `ml-invoke` is given the URL, the invoker role and operator keys
    THEN it assumes the role, signs, and prints what the handler computes for the samples."""
    body = samples_path.read_bytes()
    result = subprocess.run(
        [
            str(client_venv.ml_invoke),
            "--url",
            deployed.endpoint_url,
            "--role-arn",
            deployed.role_arn,
            "--region",
            system.region,
            "--sts-endpoint-url",
            system.moto.endpoint_url,
            "--body",
            "-",
        ],
        input=body,
        cwd=client_venv.workdir,
        env=_env(
            AWS_ACCESS_KEY_ID=OPERATOR_KEY_ID,
            AWS_SECRET_ACCESS_KEY=OPERATOR_SECRET,
            # No profile or instance metadata of this machine may stand in for the keys above.
            AWS_CONFIG_FILE=str(client_venv.workdir / "no-aws-config"),
            AWS_SHARED_CREDENTIALS_FILE=str(client_venv.workdir / "no-aws-credentials"),
            AWS_EC2_METADATA_DISABLED="true",
        ),
        capture_output=True,
        timeout=120,
        check=False,
    )
    stdout, stderr = result.stdout.decode(), result.stderr.decode()

    assert result.returncode == 0, stderr
    assert json.loads(stdout) == _reference_predictions(bundled_model_path, body)
    assert OPERATOR_SECRET not in stdout + stderr
    assert "ASIA" not in stdout + stderr  # no temporary key id either


def _reference_predictions(model_path: Path, body: bytes) -> object:
    """The handler in-process, as the oracle for what the deployed function answers."""
    service = InferenceService(
        model=load_model(model_path),
        max_rows=DEFAULT_MAX_ROWS,
        logger=RequestLogger(io.StringIO()),
    )
    response = service.handle(
        {
            "requestContext": {"http": {"method": "POST"}, "requestId": "wheel"},
            "headers": {"content-type": "application/json"},
            "body": body.decode(),
            "isBase64Encoded": False,
        },
        None,
    )
    assert response["statusCode"] == 200, response
    return json.loads(response["body"])
