"""Root pytest configuration: layer markers, e2e options, shared fixtures, hypothesis profiles."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parent
LAYERS = ("unit", "contract", "e2e")

# PR gate ("ci"): breadth, not depth: every property, few examples, derandomized so a red run
# reproduces. "deep" (the scheduled properties workflow) runs the same properties with 40x the
# examples, a fresh seed each night. "dev" is the local default.
settings.register_profile(
    "ci",
    max_examples=25,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.register_profile(
    "deep",
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.register_profile("dev", max_examples=25, deadline=None)
# mutation/run.py: one run per mutant, so fewer examples, and derandomized so kill rates repeat.
settings.register_profile(
    "mutation",
    max_examples=30,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
)

# jsii prints an end-of-life banner under Node 20 on every import of aws_cdk.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("CDK_DISABLE_CLI_TELEMETRY", "true")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("e2e")
    group.addoption(
        "--target",
        choices=("local", "aws"),
        default="local",
        help="where tests/e2e deploys the app: the local IAM-enforcing stand-in, or AWS",
    )
    group.addoption(
        "--keep-stack",
        action="store_true",
        default=False,
        help="debugging only: leave the e2e stack deployed after the run (never in CI)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "unit: handler and model only; no sockets")
    config.addinivalue_line("markers", "contract: template, policy, signing, local endpoint")
    config.addinivalue_line("markers", "e2e: deploy, invoke, destroy (--target local|aws)")
    if config.getoption("--keep-stack") and os.environ.get("CI"):
        raise pytest.UsageError("--keep-stack is for debugging; CI must always tear down")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    del config
    order: dict[int, int] = {}
    for item in items:
        layer = _layer(item)
        if layer is not None:
            item.add_marker(getattr(pytest.mark, layer))
        order[id(item)] = LAYERS.index(layer) if layer is not None else len(LAYERS)
    # unit, then contract, then e2e: moto's mock_aws (contract) resets the in-process backends
    # that the e2e session's deployment lives in, so the layers must not interleave.
    items.sort(key=lambda item: order[id(item)])


def _layer(item: pytest.Item) -> str | None:
    parts = Path(str(item.path)).relative_to(ROOT).parts
    if len(parts) > 1 and parts[0] == "tests" and parts[1] in LAYERS:
        return parts[1]
    return None


@pytest.fixture(scope="session")
def project_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def handler_dir() -> Path:
    return ROOT / "handler"


@pytest.fixture(scope="session")
def bundled_model_path() -> Path:
    return ROOT / "handler" / "model" / "model.ubj"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return ROOT / "tests" / "fixtures"


@pytest.fixture(scope="session")
def samples_path() -> Path:
    """The two records-form requests that existing clients send (copied from the reference set);
    product data: the demo and the benchmarks send them too."""
    return ROOT / "data" / "samples.json"


@pytest.fixture(scope="session")
def samples(samples_path: Path) -> list[dict[str, float]]:
    return json.loads(samples_path.read_text())
