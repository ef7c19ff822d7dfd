"""What the local Function URL adds to the handler per signed request, where that time goes,
what running the function through awslambdaric and the Runtime API costs against the earlier
pipe worker (per request and per environment cold start), and requests per second under
concurrent signed clients; prints markdown tables.

    cd /work/main && python -m bench.endpoint_bench [--quick] [--rounds R] [--clients N]
                                                    [--requests M] [--load-runs K]

One run, one deployment (LocalSystem: moto + the local endpoint on 127.0.0.1): the direct call
(InferenceService.handle in this process, on a prebuilt event, serving the very model.so that
the endpoint's task root holds, so the difference is the endpoint's alone) and the signed
request through the endpoint (requests + AWS4Auth, one keep-alive session) are timed
interleaved, round by round, so the machine's noise hits both alike; so are the same signed
request with the endpoint's runtime swapped for the pipe-worker baseline
(bench/pipe_runtime.py), and the cold starts of both kinds of environment. Not a test: it
reports, it does not assert, except that both sides must answer the same predictions, or the
timing would mean nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import random
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from requests_aws4auth import AWS4Auth

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "handler"))

from ml_handler.compiled_model import load_compiled  # noqa: E402
from ml_handler.config import DEFAULT_MAX_ROWS, LIBRARY_NAME  # noqa: E402
from ml_handler.logs import RequestLogger  # noqa: E402
from ml_handler.service import InferenceService  # noqa: E402

from bench.pipe_runtime import PipeWorkerRuntime  # noqa: E402
from bench.timing import fmt, interleaved  # noqa: E402
from localurl.deploy import DeployedStack, LocalSystem  # noqa: E402
from localurl.iam_policy import is_url_invoke_allowed  # noqa: E402
from localurl.lambda_event import build_event  # noqa: E402
from localurl.moto_identity import lookup_access_key  # noqa: E402
from localurl.runtime import FunctionRuntime  # noqa: E402
from localurl.server import SignedRequest, UrlTarget  # noqa: E402
from localurl.sigv4_verify import verify_sigv4  # noqa: E402
from localurl.url_auth import IamUrlAuthorizer  # noqa: E402

STACK = "endpoint-bench"
SAMPLES: list[dict[str, float]] = json.loads((ROOT / "data" / "samples.json").read_text())
SAMPLES_BODY = json.dumps(SAMPLES).encode()
JSON_HEADERS = {"content-type": "application/json"}
MAX_ROWS_PER_REQUEST = 12  # the load test's batches: 1..12 jittered sample rows


@dataclasses.dataclass(frozen=True)
class Keys:
    access_key: str
    secret_key: str = dataclasses.field(repr=False)
    session_token: str = dataclasses.field(repr=False)

    def auth(self, region: str) -> AWS4Auth:
        return AWS4Auth(
            self.access_key, self.secret_key, region, "lambda", session_token=self.session_token
        )


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of the samples."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def direct_event(body: bytes) -> dict[str, Any]:
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/",
        "rawQueryString": "",
        "headers": dict(JSON_HEADERS),
        "requestContext": {"http": {"method": "POST", "path": "/"}, "requestId": "bench"},
        "body": body.decode(),
        "isBase64Encoded": False,
    }


def jitter(rng: random.Random, name: str, value: float) -> float:
    return value if name.startswith("color_") else round(value * rng.uniform(0.8, 1.2), 4)


def make_batch(rng: random.Random) -> bytes:
    rows = []
    for _ in range(rng.randint(1, MAX_ROWS_PER_REQUEST)):
        base = rng.choice(SAMPLES)
        rows.append({name: jitter(rng, name, value) for name, value in base.items()})
    return json.dumps(rows).encode()


@contextlib.contextmanager
def deployment() -> Iterator[tuple[LocalSystem, DeployedStack, float]]:
    system = LocalSystem()
    try:
        system.start()
        started = time.perf_counter()
        deployed = system.deploy(system.synth(stack_name=STACK))
        yield system, deployed, time.perf_counter() - started
    finally:
        system.close()


def assume(system: LocalSystem, role_arn: str) -> Keys:
    answer = system.moto.client("sts").assume_role(RoleArn=role_arn, RoleSessionName=STACK)
    credentials = answer["Credentials"]
    return Keys(
        credentials["AccessKeyId"], credentials["SecretAccessKey"], credentials["SessionToken"]
    )


@contextlib.contextmanager
def pipe_worker_baseline(system: LocalSystem, deployed: DeployedStack) -> Iterator[UrlTarget]:
    """The endpoint's target with its runtime replaced by the pipe-worker baseline, configured
    as the deployed one (same task root, handler, environment, concurrency), warmed up."""
    target = system.endpoint(deployed.stack_name).target
    assert isinstance(target, UrlTarget)
    config = dataclasses.replace(
        target.runtime.config, log_path=deployed.log_path.with_suffix(".pipe.log")
    )
    baseline = PipeWorkerRuntime(config)
    try:
        baseline.warm_up()
        yield dataclasses.replace(target, runtime=baseline)  # type: ignore[arg-type]
    finally:
        baseline.close()


def latency(
    system: LocalSystem,
    deployed: DeployedStack,
    keys: Keys,
    service: InferenceService,
    baseline: UrlTarget,
    rounds: int,
) -> dict[str, list[float]]:
    """Direct handler call vs signed request through the endpoint (as deployed: awslambdaric,
    and with the pipe-worker baseline swapped in), interleaved."""
    event = direct_event(SAMPLES_BODY)
    session = requests.Session()
    auth = keys.auth(system.region)
    url = deployed.endpoint_url
    expected = service.handle(event, None)["body"].encode()
    server = system.endpoint(deployed.stack_name)
    deployed_target = server.target
    assert deployed_target is not None

    def through(target: UrlTarget) -> Callable[[], None]:
        def call() -> None:
            server.configure(target)
            response = session.post(
                url, data=SAMPLES_BODY, headers=JSON_HEADERS, auth=auth, timeout=30
            )
            if response.status_code != 200 or response.content != expected:
                raise RuntimeError(f"endpoint answered {response.status_code}: {response.text}")

        return call

    def direct() -> None:
        service.handle(event, None)

    candidates = {
        "direct": direct,
        "endpoint": through(deployed_target),
        "endpoint_pipe": through(baseline),
    }
    interleaved(candidates, max(20, rounds // 10))  # warm
    try:
        return interleaved(candidates, rounds).samples
    finally:
        server.configure(deployed_target)
        session.close()


def cold_starts(
    system: LocalSystem, deployed: DeployedStack, repetitions: int
) -> dict[str, list[float]]:
    """A new environment of each kind, from process start to ready for its first event (the
    runtime's first `next`, or the worker's ready frame): interpreter, runtime client, handler
    import and model load. Each in a fresh pool, alternating; pools are closed outside the
    timing."""
    target = system.endpoint(deployed.stack_name).target
    assert isinstance(target, UrlTarget)
    config = dataclasses.replace(
        target.runtime.config, log_path=deployed.log_path.with_suffix(".cold.log")
    )
    makers: dict[str, Callable[[], FunctionRuntime | PipeWorkerRuntime]] = {
        "awslambdaric": lambda: FunctionRuntime(config),
        "pipe": lambda: PipeWorkerRuntime(config),
    }
    samples: dict[str, list[float]] = {name: [] for name in makers}
    for index in range(repetitions + 1):
        for name in list(makers)[:: 1 if index % 2 else -1]:
            runtime = makers[name]()
            try:
                started = time.perf_counter()
                runtime.warm_up()
                elapsed = time.perf_counter() - started
            finally:
                runtime.close()
            if index:  # the first round only warms the page cache
                samples[name].append(elapsed)
    return samples


def breakdown(
    system: LocalSystem, deployed: DeployedStack, keys: Keys, baseline: UrlTarget, rounds: int
) -> dict[str, list[float]]:
    """The endpoint's parts, each called in-process, interleaved like the main comparison."""
    target = system.endpoint(deployed.stack_name).target
    assert isinstance(target, UrlTarget)
    assert target.authorizer is not None
    authorizer = target.authorizer
    uncached = IamUrlAuthorizer(
        moto=system.moto,
        function_arn=deployed.function_arn,
        account_id=system.account_id,
        policy_cache_seconds=0.0,
    )
    auth = keys.auth(system.region)
    host = deployed.endpoint_url.split("/")[2]

    def signed() -> SignedRequest:
        prepared = requests.Request(
            "POST", deployed.endpoint_url, data=SAMPLES_BODY, headers=JSON_HEADERS
        ).prepare()
        auth(prepared)
        headers = [("Host", host), *((k, str(v)) for k, v in prepared.headers.items())]
        return SignedRequest(
            method="POST", raw_path="/", raw_query="", headers=headers, body=SAMPLES_BODY
        )

    request = signed()
    caller = authorizer(request)  # raises AccessDenied if the request is not as the server sees it
    iam = system.moto.client("iam")
    role_name = deployed.role_arn.rsplit("/", 1)[-1]
    identity = [
        iam.get_role_policy(RoleName=role_name, PolicyName=name)["PolicyDocument"]
        for name in iam.list_role_policies(RoleName=role_name)["PolicyNames"]
    ]

    def verify() -> None:
        verify_sigv4(
            method=request.method,
            raw_path=request.raw_path,
            raw_query=request.raw_query,
            headers=request.headers,
            body=request.body,
            expected_region=system.region,
            lookup_secret=lambda key: lookup_access_key(key, account_id=system.account_id),
            now=datetime.now(UTC),
        )

    def evaluate() -> None:
        allowed, reason = is_url_invoke_allowed(
            identity_policies=identity,
            resource_policy=None,
            function_arn=deployed.function_arn,
            auth_type="AWS_IAM",
            principal_arn=deployed.role_arn,
            account_id=system.account_id,
            caller_arn=caller.user_arn,
        )
        if not allowed:
            raise RuntimeError(reason)

    event = build_event(
        method="POST",
        raw_path="/",
        raw_query="",
        headers=request.headers,
        body=SAMPLES_BODY,
        source_ip="127.0.0.1",
        url=target.identity,
        caller=caller,
        request_id="bench",
    )

    def invoker(runtime: Any) -> Callable[[], None]:
        def invoke() -> None:
            invocation = runtime.invoke(event, request_id=f"bench-{time.perf_counter_ns()}")
            if invocation.result is None:
                raise RuntimeError(f"invoke failed: {invocation}")

        return invoke

    candidates: dict[str, Callable[[], object]] = {
        "sign": signed,
        "authorizer": lambda: authorizer(request),
        "authorizer_uncached": lambda: uncached(request),
        "verify": verify,
        "lookup": lambda: lookup_access_key(keys.access_key, account_id=system.account_id),
        "evaluate": evaluate,
        "invoke": invoker(target.runtime),
        "invoke_pipe": invoker(baseline.runtime),
    }
    interleaved(candidates, 10)  # warm
    return interleaved(candidates, rounds).samples


AS_DEPLOYED = "as deployed (policy cache 2 s)"
NO_EXPIRY = "policy cache never expires (primed)"


@contextlib.contextmanager
def policy_cache_never_expiring(
    system: LocalSystem, deployed: DeployedStack, keys: Keys
) -> Iterator[None]:
    """The endpoint's authorizer swapped for one that reads the policies once; then restored."""
    server = system.endpoint(deployed.stack_name)
    original = server.target
    assert isinstance(original, UrlTarget)
    authorizer = IamUrlAuthorizer(
        moto=system.moto,
        function_arn=deployed.function_arn,
        account_id=system.account_id,
        policy_cache_seconds=float("inf"),
    )
    server.configure(dataclasses.replace(original, authorizer=authorizer))
    try:
        response = requests.post(
            deployed.endpoint_url,
            data=SAMPLES_BODY,
            headers=JSON_HEADERS,
            auth=keys.auth(system.region),
            timeout=30,
        )
        if response.status_code != 200:
            raise RuntimeError(f"priming the policy cache: {response.status_code}")
        yield
    finally:
        server.configure(original)


@dataclasses.dataclass
class LoadRun:
    wall: float
    latencies: list[float]
    errors: int
    wrong: int


def load(
    system: LocalSystem,
    deployed: DeployedStack,
    keys: Keys,
    service: InferenceService,
    clients: int,
    per_client: int,
    seed: int,
) -> LoadRun:
    """The load test's pattern: N threads, each its own session and signer, M requests each."""
    rng = random.Random(seed)
    bodies = [[make_batch(rng) for _ in range(per_client)] for _ in range(clients)]
    expected = [[service.handle(direct_event(b), None)["body"].encode() for b in c] for c in bodies]
    latencies: list[list[float]] = [[] for _ in range(clients)]
    failures = [[0, 0] for _ in range(clients)]  # errors, wrong answers
    barrier = threading.Barrier(clients + 1)

    def client(index: int) -> None:
        auth = keys.auth(system.region)
        with requests.Session() as session:
            barrier.wait()
            for body, answer in zip(bodies[index], expected[index], strict=True):
                started = time.perf_counter()
                try:
                    response = session.post(
                        deployed.endpoint_url,
                        data=body,
                        headers=JSON_HEADERS,
                        auth=auth,
                        timeout=30,
                    )
                except requests.RequestException:
                    failures[index][0] += 1
                    continue
                latencies[index].append(time.perf_counter() - started)
                if response.status_code != 200:
                    failures[index][0] += 1
                elif response.content != answer:
                    failures[index][1] += 1

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join(timeout=300)
    wall = time.perf_counter() - started
    if any(thread.is_alive() for thread in threads):
        raise RuntimeError("load clients did not finish within 300 s")
    return LoadRun(
        wall=wall,
        latencies=[value for mine in latencies for value in mine],
        errors=sum(f[0] for f in failures),
        wrong=sum(f[1] for f in failures),
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds: a smoke run")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 1000; quick 150)")
    parser.add_argument("--clients", type=int, default=8, help="load: concurrent clients (N)")
    parser.add_argument("--requests", type=int, default=25, help="load: requests per client (M)")
    parser.add_argument("--load-runs", type=int, default=3, help="load: repetitions")
    parser.add_argument(
        "--cold-starts", type=int, help="environment cold starts of each kind (default 9; quick 3)"
    )
    args = parser.parse_args(argv)
    rounds = args.rounds or (150 if args.quick else 1000)
    parts_rounds = max(30, rounds // 5)

    with (
        open(os.devnull, "w") as devnull,
        deployment() as (system, deployed, deploy_seconds),
    ):
        max_rows = int(deployed.spec.environment.get("MAX_ROWS", DEFAULT_MAX_ROWS))
        # The library the endpoint's function serves: the image's, as the stand-in laid it out.
        assert deployed.task_root is not None
        model = load_compiled(deployed.task_root / "model" / LIBRARY_NAME)
        service = InferenceService(model=model, max_rows=max_rows, logger=RequestLogger(devnull))
        keys = assume(system, deployed.role_arn)
        with pipe_worker_baseline(system, deployed) as baseline:
            timings = latency(system, deployed, keys, service, baseline, rounds)
            parts = breakdown(system, deployed, keys, baseline, parts_rounds)
        cold = cold_starts(system, deployed, args.cold_starts or (3 if args.quick else 9))
        # A first, unmeasured run starts the function's further execution environments (each
        # a cold start: import + model load), as the first burst on Lambda would.
        warm = load(system, deployed, keys, service, args.clients, args.requests, seed=-1)
        runs: dict[str, list[LoadRun]] = {AS_DEPLOYED: [], NO_EXPIRY: []}
        for seed in range(args.load_runs):
            # Alternating, same batches: the deployed authorizer, then one whose policy cache
            # never expires (primed), to show what the 2 s cache's refreshes cost under load.
            runs[AS_DEPLOYED].append(
                load(system, deployed, keys, service, args.clients, args.requests, seed)
            )
            with policy_cache_never_expiring(system, deployed, keys):
                runs[NO_EXPIRY].append(
                    load(system, deployed, keys, service, args.clients, args.requests, seed)
                )
        concurrency = system.concurrency

    direct, endpoint = timings["direct"], timings["endpoint"]
    p50 = {name: percentile(values, 50) for name, values in {**timings, **parts}.items()}
    p99 = {name: percentile(values, 99) for name, values in {**timings, **parts}.items()}

    print("### Latency per request (2-row samples body)")
    print()
    print("| measurement | p50 | p99 | n |")
    print("|---|---|---|---|")
    print(
        "| direct: `InferenceService.handle` in-process on the endpoint's model.so, prebuilt "
        f"event | {fmt(p50['direct'])} "
        f"| {fmt(p99['direct'])} | {len(direct)} |"
    )
    print(
        "| endpoint: signed POST to 127.0.0.1 (requests + AWS4Auth, keep-alive), as deployed: "
        f"awslambdaric + Runtime API | {fmt(p50['endpoint'])} | {fmt(p99['endpoint'])} "
        f"| {len(endpoint)} |"
    )
    print(
        "| endpoint, same request, runtime swapped for the pipe worker (baseline) "
        f"| {fmt(p50['endpoint_pipe'])} | {fmt(p99['endpoint_pipe'])} "
        f"| {len(timings['endpoint_pipe'])} |"
    )
    print(
        "| **added by the endpoint** (endpoint - direct) "
        f"| **{fmt(p50['endpoint'] - p50['direct'])}** "
        f"| **{fmt(p99['endpoint'] - p99['direct'])}** | — |"
    )
    print(
        "| added by the endpoint with the pipe worker (baseline - direct) "
        f"| {fmt(p50['endpoint_pipe'] - p50['direct'])} "
        f"| {fmt(p99['endpoint_pipe'] - p99['direct'])} | — |"
    )
    print(
        "| **awslambdaric + Runtime API over the pipe worker** (endpoint - baseline) "
        f"| **{fmt(p50['endpoint'] - p50['endpoint_pipe'])}** "
        f"| **{fmt(p99['endpoint'] - p99['endpoint_pipe'])}** | — |"
    )
    rows = [
        ("sign", "client: AWS4Auth signing (part of the endpoint time above)"),
        ("authorizer", "server: IamUrlAuthorizer, as deployed (policies cached 2 s)"),
        ("verify", "… of which SigV4 verification (`verify_sigv4`)"),
        ("lookup", "… … of which `lookup_access_key` (scan of moto's STS sessions)"),
        ("evaluate", "… of which IAM evaluation (`is_url_invoke_allowed`, documents given)"),
        (
            "authorizer_uncached",
            "server: IamUrlAuthorizer with policy cache off (IAM + Lambda API reads via moto)",
        ),
        (
            "invoke",
            "server: `FunctionRuntime.invoke` (Runtime API + awslambdaric process + handler)",
        ),
        ("invoke_pipe", "baseline: `PipeWorkerRuntime.invoke` (pipe to worker + handler)"),
    ]
    for name, label in rows:
        print(f"| {label} | {fmt(p50[name])} | {fmt(p99[name])} | {len(parts[name])} |")
    accounted = p50["sign"] + p50["authorizer"] + p50["invoke"]
    print(
        "| rest, roughly (parts timed apart): HTTP client + server, event, response mapping "
        "(endpoint p50 - sign - authorizer - invoke) "
        f"| {fmt(p50['endpoint'] - accounted)} | — | — |"
    )
    print()

    print("### Execution environment cold start (process start to ready for the first event)")
    print()
    print("| environment | median | min-max | n |")
    print("|---|---|---|---|")
    labels = {
        "awslambdaric": "`python -m awslambdaric` + Runtime API (as deployed)",
        "pipe": "pipe worker (baseline)",
    }
    for name, label in labels.items():
        values = cold[name]
        print(
            f"| {label} | {fmt(statistics.median(values))} "
            f"| {fmt(min(values))}-{fmt(max(values))} | {len(values)} |"
        )
    ratios = [a / b for a, b in zip(cold["awslambdaric"], cold["pipe"], strict=True)]
    print(
        f"| ratio awslambdaric / pipe, per alternating pair | {statistics.median(ratios):.2f} "
        f"| {min(ratios):.2f}-{max(ratios):.2f} | {len(ratios)} |"
    )
    print()

    total = args.clients * args.requests
    print(f"### Throughput: {args.clients} clients x {args.requests} signed requests, concurrent")
    print()
    print(f"| measurement | {AS_DEPLOYED} | {NO_EXPIRY} |")
    print("|---|---|---|")
    cells = {}
    for variant, measured in runs.items():
        rates = [total / run.wall for run in measured]
        latencies = [value for run in measured for value in run.latencies]
        cells[variant] = (
            f"{statistics.median(rates):.0f} ({min(rates):.0f}-{max(rates):.0f})",
            fmt(statistics.median(run.wall for run in measured)),
            f"{fmt(percentile(latencies, 50))} / {fmt(percentile(latencies, 99))}",
            f"{sum(r.errors for r in measured)} / {sum(r.wrong for r in measured)} "
            f"of {len(measured) * total}",
        )
    labels = (
        f"requests per second, median of {args.load_runs} runs (min-max)",
        "wall time per run, median",
        "per-request latency under load, p50 / p99",
        "errors / wrong predictions",
    )
    for index, label in enumerate(labels):
        print(f"| {label} | {cells[AS_DEPLOYED][index]} | {cells[NO_EXPIRY][index]} |")
    print(
        f"| first run (warm-up: starts the second worker, not counted above) "
        f"| {total / warm.wall:.0f} req/s, {warm.errors} / {warm.wrong} errors / wrong | — |"
    )
    print()
    print(
        f"Parameters: {rounds} interleaved rounds (after {max(20, rounds // 10)} warm-up), "
        f"{parts_rounds} rounds for the parts; load {args.clients} clients x {args.requests} "
        f"requests, {args.load_runs} runs of each variant after one warm-up run, batches of "
        f"1-{MAX_ROWS_PER_REQUEST} jittered sample rows, one requests.Session and AWS4Auth "
        "per client thread; function concurrency "
        f"{concurrency} environments; clients, HTTP server and moto share "
        f"this process; {os.cpu_count()} CPUs, Python {sys.version.split()[0]}; "
        f"synth + deploy took {deploy_seconds:.1f} s. Percentiles are nearest-rank."
    )


if __name__ == "__main__":
    main()
