"""Run events through one simulated image's execution environment: the image's Python running
awslambdaric against the local Runtime API (localurl.runtime), as the Lambda base image does.

    python -m tests.unit.image_runtime REQUEST.json

A separate process because the unit layer blocks sockets in the pytest process, and the Runtime
API is HTTP on 127.0.0.1. REQUEST names the task root, handler, interpreter, the runtime
directory holding awslambdaric, the events and where to write the outcome. Exit status: 0 when
every event was answered, 3 when init failed, 4 when an invocation failed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from localurl.runtime import FunctionRuntime, FunctionRuntimeConfig

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
