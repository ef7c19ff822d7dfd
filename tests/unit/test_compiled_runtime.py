"""The handler at run time, in a fresh interpreter as a cold start runs it: serving
model_compiler's library imports neither numpy nor xgboost (nor scipy), a plain POST imports no
JSON library at all, and a JSON model file is served (compiled on first use) with none of
numpy, scipy or xgboost importable: what a venv of handler/requirements.txt alone holds."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.unit.events import function_url_event, post
from tests.unit.small_model import FEATURES

HANDLER_DIR = Path(__file__).resolve().parents[2] / "handler"
HEAVY = ("numpy", "xgboost", "scipy", "pandas")
JSON_LIBRARIES = ("orjson", "json")
# No import of its own beyond sys: whatever else is in sys.modules, the handler imported. The
# event arrives as a Python literal (eval'd, no parser imported); argv[3] lists packages made
# unimportable, as if not installed; argv[4] packages imported first (the harness's own check).
SCRIPT = r"""
import sys
sys.path.insert(0, sys.argv[1])
blocked = set(filter(None, sys.argv[3].split(",")))
for name in filter(None, sys.argv[4].split(",")):
    __import__(name)

class NotInstalled:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.partition(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NotInstalled)
import ml_handler.app as app
response = app.lambda_handler(eval(sys.argv[2]), None)
sys.stderr.write(repr({"response": response, "modules": sorted(sys.modules)}))
"""


def run_handler(
    model_path: Path,
    event: dict,
    *,
    cache_dir: Path,
    blocked: tuple[str, ...] = (),
    preloaded: tuple[str, ...] = (),
) -> dict:
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            SCRIPT,
            str(HANDLER_DIR),
            repr(event),
            ",".join(blocked),
            ",".join(preloaded),
        ],
        env={
            "MODEL_PATH": str(model_path),
            "MODEL_CACHE_DIR": str(cache_dir),
            "PATH": "/usr/bin:/bin",
        },
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    # The handler's log line went to stdout; stderr holds the script's one literal.
    return ast.literal_eval(completed.stderr)


def imported(run: dict, names: tuple[str, ...]) -> list[str]:
    return sorted({name.partition(".")[0] for name in run["modules"]} & set(names))


def test_compiled_handler_imports_no_numpy_or_xgboost(small_library, small_model_paths, tmp_path):
    event = post([[1.5, None, -3.0, 20.0, 1], [None] * len(FEATURES)])
    compiled = run_handler(small_library, event, cache_dir=tmp_path)
    assert imported(compiled, HEAVY) == []
    assert compiled["response"]["statusCode"] == 200
    # The check above can fail: the same harness sees xgboost (and numpy with it) when they are
    # imported before the handler.
    preloaded = run_handler(small_library, event, cache_dir=tmp_path, preloaded=("xgboost",))
    assert {"numpy", "xgboost"} <= set(imported(preloaded, HEAVY))
    # A UBJSON model file is compiled on first use, read by xgboost in a child process: this
    # process imports none of them either, and answers byte for byte what the library answers.
    reference = run_handler(small_model_paths["ubj"], event, cache_dir=tmp_path)
    assert imported(reference, HEAVY) == []
    assert reference["response"] == compiled["response"]


def test_plain_post_imports_no_json_library_in_a_fresh_interpreter(small_library, tmp_path):
    """GIVEN a fresh interpreter serving the compiled model WHEN its first request is a plain POST
    (the library's fast path reads it) THEN neither orjson nor json was imported: init, the
    request and its log line need neither."""
    rows = post([[1.5, None, -3.0, 20.0, 1], [0.25, 2.0, 9.5, -4.0, 0]])
    plain = run_handler(small_library, rows, cache_dir=tmp_path)
    assert plain["response"]["statusCode"] == 200
    assert imported(plain, JSON_LIBRARIES) == []
    # GET, in the same harness, does import orjson: the check above can fail.
    schema = run_handler(small_library, function_url_event("GET"), cache_dir=tmp_path)
    assert schema["response"]["statusCode"] == 200
    assert "orjson" in imported(schema, JSON_LIBRARIES)


def test_json_model_served_where_numpy_scipy_and_xgboost_are_not_installed(
    small_model_paths, small_library, tmp_path
):
    event = post([[1.5, None, -3.0, 20.0, 1], [None] * len(FEATURES)])
    compiled = run_handler(small_library, event, cache_dir=tmp_path / "a")
    from_json = run_handler(
        small_model_paths["json"], event, cache_dir=tmp_path / "b", blocked=HEAVY
    )
    assert from_json["response"] == compiled["response"]
    assert imported(from_json, HEAVY) == []
    assert list((tmp_path / "b").glob("*/model.so"))  # compiled on first use, into the cache
