"""Simulated AWS for tests: one moto server on loopback, reset before each test; the real AwsBackend on it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer

from provisioning.aws import AwsBackend
from provisioning.simulated import seed_simulated_aws


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws_env(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    requests.post(f"{moto_url}/moto-api/reset", timeout=10).raise_for_status()
    return moto_url


class CallCounter:
    """Counts EC2 API calls by operation name (botocore event hook)."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def __call__(self, model, **_: object) -> None:  # type: ignore[no-untyped-def]
        self.calls[model.name] += 1

    def mutating(self) -> int:
        from provisioning.aws import MUTATING

        return sum(n for op, n in self.calls.items() if op in MUTATING)


@pytest.fixture
def backend(aws_env: str) -> AwsBackend:
    b = AwsBackend(boto3.Session(), region="us-east-1", bucket="cwc-test", instance_profile="cwc-workspace",
                   endpoint_url=aws_env, max_attempts=4)
    seed_simulated_aws(b)
    return b


@pytest.fixture
def ec2_calls(backend: AwsBackend) -> CallCounter:
    counter = CallCounter()
    backend.ec2.meta.events.register("before-call.ec2.*", counter)
    return counter
