"""The simulated image run as Lambda runs it: events through one execution environment, the
image's Python running awslambdaric (as the base image does) against the local Runtime API
(localurl.runtime), in an interpreter that sees only the task root (localurl.image lays it out)
and the runtime's own directory.

invoke() is the test's side; the environment runs in a child process,

    python -m tests.unit.image_runtime REQUEST.json

because the unit layer blocks sockets in the pytest process, and the Runtime API is HTTP on
127.0.0.1. REQUEST names the task root, handler, interpreter, the runtime directory holding
awslambdaric, the events and where to write the outcome. Exit status: 0 when every event was
answered, 3 when init failed, 4 when an invocation failed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from localurl.image import Image, ImageBuildError, pip_layer, python_version
from localurl.runtime import FunctionRuntime, FunctionRuntimeConfig

ROOT = Path(__file__).resolve().parents[2]
# The base image's runtime directory (/var/runtime): the runtime interface client and its
# dependencies, at the versions this repository pins for the local stand-in.
RUNTIME_PACKAGES = ("awslambdaric", "simplejson", "snapshot-restore-py")

# What the Lambda base image's /var/runtime/bootstrap does before handing over to the runtime
# client: the task root first on sys.path (and a site directory, for its .pth files), then the
# runtime directory. Runs under `python -I -S -B`: no site-packages, no PYTHON* variables, no
# cwd on sys.path, no bytecode writes (the image's file system is read-only). On SIGTERM (the
# pool's shutdown) it records what the interpreter loaded, for the tests, and exits.
BOOTSTRAP = r"""
import json, os, signal, site, sys, sysconfig
dump_path = sys.argv[1]
task_root = os.environ["LAMBDA_TASK_ROOT"]
sys.path.insert(0, os.environ["LAMBDA_RUNTIME_DIR"])
sys.path.insert(0, task_root)
site.addsitedir(task_root)
def dump(signum, frame):
    with open(dump_path, "w") as out:
        json.dump({
            "python": "%d.%d.%d" % sys.version_info[:3],
            "modules": {
                name: getattr(module, "__file__", None)
                for name, module in list(sys.modules.items())
            },
            "stdlib": [sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"]],
        }, out)
    os._exit(0)
signal.signal(signal.SIGTERM, dump)
from awslambdaric.__main__ import main
main([sys.argv[0], sys.argv[2]])
"""

# Not in the Dockerfile (they are the template's): fixed values for the simulation.
FUNCTION_NAME = "simulated-image"
FUNCTION_ARN = f"arn:aws:lambda:us-east-1:123456789012:function:{FUNCTION_NAME}"
TIMEOUT_SECONDS = 300
MEMORY_MB = 1024


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
    return pip_layer(
        python, ["--no-cache-dir", "--no-deps", "--only-binary", ":all:", *runtime_pins()]
    )


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


def invoke(image: Image, events: Iterable[Mapping[str, object]]) -> Invocation:
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
                    "execution_env": f"AWS_Lambda_python{python_version(image.python)}",
                    "base_environment": {
                        **image.process_env(),
                        "LAMBDA_RUNTIME_DIR": str(runtime),
                    },
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


def main(request_path: str) -> int:
    request = json.loads(Path(request_path).read_text())
    runtime = FunctionRuntime(
        FunctionRuntimeConfig(
            code_dir=Path(request["task_root"]),
            handler=request["handler"],
            environment=request["environment"],
            timeout_seconds=TIMEOUT_SECONDS,
            memory_mb=MEMORY_MB,
            function_name=FUNCTION_NAME,
            function_arn=FUNCTION_ARN,
            region="us-east-1",
            log_path=Path(request["log"]),
            concurrency=1,
            execution_env=request["execution_env"],
            command=(request["python"], "-I", "-S", "-B", "-c", BOOTSTRAP, request["dump"]),
            base_environment=request["base_environment"],
        )
    )
    outcomes = []
    try:
        for index, event in enumerate(request["events"]):
            outcome = runtime.invoke(event, request_id=f"sim-{index}")
            outcomes.append(
                {
                    "result": outcome.result,
                    "error": outcome.error,
                    "error_document": outcome.error_document,
                    "timed_out": outcome.timed_out,
                    "init_error": outcome.init_error,
                }
            )
    finally:
        runtime.close()
    Path(request["out"]).write_text(json.dumps(outcomes))
    if any(outcome["init_error"] for outcome in outcomes):
        return 3
    if any(outcome["error"] or outcome["timed_out"] for outcome in outcomes):
        return 4
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
