"""mutation/config_faults.py's injections stay meaningful: each patch still applies to the code,
and every context key of the README's table has its faults (issue 10).

The faults themselves run outside the gate (`python -m mutation.config_faults`, ~15-25 min); this
keeps a refactor from quietly turning an injection into a no-op that the script reports as stale
only when someone next runs it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mutation.config_faults import DEPLOYED_KEYS, FAULTS, ROOT, Fault, StalePatchError, apply
from tests.contract.config_cases import KEYS


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f"{f.key}: {f.description}")
def test_fault_patch_applies_once_when_the_code_is_current(fault: Fault) -> None:
    text = (ROOT / fault.path).read_text()
    assert text.count(fault.old) == 1, f"{fault.path} no longer holds {fault.old!r} exactly once"
    assert fault.new != fault.old


def test_every_context_key_has_an_infra_fault_the_contract_suite_must_catch() -> None:
    covered = {f.key for f in FAULTS if f.layer == "infra" and "contract" in f.suites}
    assert covered == set(KEYS)


@pytest.mark.parametrize("key", DEPLOYED_KEYS)
def test_every_deployed_setting_has_faults_the_e2e_suite_must_catch(key: str) -> None:
    e2e = [f for f in FAULTS if f.key == key and "e2e" in f.suites]
    # One in the stack (the template is wrong too), one past it (the template is right).
    assert {f.layer for f in e2e} == {"infra", "deployed"}, e2e


def test_apply_refuses_when_the_patched_text_is_gone(tmp_path: Path) -> None:
    fault = FAULTS[0]
    (tmp_path / fault.path).parent.mkdir(parents=True)
    (tmp_path / fault.path).write_text("# the code moved on\n")

    with pytest.raises(StalePatchError, match="found 0 times"):
        apply(fault, tmp_path)
