"""A jsii kernel of its own for each forked mutant run, with aws_cdk imported only once.

aws_cdk talks to one Node process (the jsii kernel) over pipes, started when the first jsii
assembly is imported. A process forked after that shares the pipes: two mutants at once interleave
their messages and fail in ~0.2 s, a false kill. Importing aws_cdk afresh in every mutant's process
is correct but costs ~5 s of Python imports each.

So mutmut's fork server imports this module (mutation/run.py's `preload`): it records which
assemblies the kernel loads and imports aws_cdk's modules once. As a pytest plugin (`-p
mutation.jsii_fork`), it gives every forked pytest session a new kernel process and loads the same
assemblies into it; the Python modules are inherited from the fork server, the Node state is not.
Nothing jsii created before the fork is used after it: the fork server imports only modules, no
construct exists yet.

It also widens mutmut's test selection. mutmut credits a function to the tests during which it
ran, and a session fixture's synth runs during the first test that asks for it: later tests of
the same template would never see a mutant of a construct. So after the stats run, every function
the run reached is credited to every test of it (a mutant's run stops at its first failing test).
"""

from __future__ import annotations

import os

import pytest
from jsii import _runtime
from jsii._kernel import Kernel
from jsii._kernel.providers.process import ProcessProvider
from jsii._utils import memoized_property

_LOADS: list[tuple[str, str, str]] = []
_load = Kernel.load


def _recording_load(self: Kernel, name: str, version: str, tarball: str) -> None:
    _LOADS.append((name, version, tarball))
    _load(self, name, version, tarball)


Kernel.load = _recording_load  # type: ignore[method-assign]

# What infra/ and its tests import from jsii packages; each assembly loads on its first import.
import aws_cdk  # noqa: E402
import aws_cdk.assertions  # noqa: E402
import cdk_nag  # noqa: E402, F401
from aws_cdk import (  # noqa: E402, F401
    aws_ecr_assets,
    aws_iam,
    aws_lambda,
    aws_logs,
    cx_api,
)

Kernel.load = _load  # type: ignore[method-assign]
_PRELOADED_BY = os.getpid()
assert aws_cdk


def restart_kernel() -> None:
    """A new kernel process for this process, with every preloaded assembly loaded into it."""
    kernel = _runtime.kernel

    # jsii memoizes the Node process per class, not per instance: a new ProcessProvider would
    # reuse the inherited process. A subclass gets a memo of its own.
    class ForkedProcessProvider(ProcessProvider):
        _process = memoized_property(ProcessProvider._process.fget.__wrapped__)

    kernel.provider = ForkedProcessProvider()
    for name, version, tarball in _LOADS:
        kernel.load(name, version, tarball)


def pytest_sessionfinish(session: pytest.Session) -> None:
    from mutmut.state import state

    covered = state().tests_by_mangled_function_name
    tests = {item.nodeid for item in session.items}
    for function in covered:
        covered[function] |= tests


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests() -> None:
    # Before the conftests: importing infra/ already calls the kernel (static properties).
    if os.getpid() != _PRELOADED_BY:
        restart_kernel()
