"""Seeding the simulated account (make run does it at every start; the tests after every moto reset)."""

from __future__ import annotations

from config.catalog import load_catalog
from provisioning.simulated import SIMULATED_IMAGE_PREFIX, seed_simulated_aws
from tests.conftest import CallCounter


def _count_calls(backend) -> CallCounter:  # type: ignore[no-untyped-def]
    calls = CallCounter()
    for client in (backend.ssm, backend.ec2):
        client.meta.events.register("before-call.*.*", calls)
    return calls


def test_a_second_seed_finds_every_image_parameter_and_writes_nothing(backend) -> None:  # type: ignore[no-untyped-def]
    names = {
        SIMULATED_IMAGE_PREFIX + t.image.removeprefix("ssm:")
        for t in load_catalog().templates
        if t.image.startswith("ssm:")
    }
    assert names
    found = backend.ssm.get_parameters(Names=sorted(names))
    assert {p["Name"] for p in found["Parameters"]} == names  # the fixture's seed published each one
    amis = {p["Value"] for p in found["Parameters"]}
    assert len(amis) == 1 and backend.ec2.describe_images(ImageIds=list(amis))["Images"]

    calls = _count_calls(backend)
    seed_simulated_aws(backend)
    assert calls.calls["PutParameter"] == 0 and calls.calls["DescribeImages"] == 0
    assert calls.calls["GetParameters"] == -(-len(names) // 10)  # one call per ten names


def test_a_missing_parameter_is_published_again(backend) -> None:  # type: ignore[no-untyped-def]
    name = sorted(
        p["Name"] for p in backend.ssm.get_parameters_by_path(Path=SIMULATED_IMAGE_PREFIX, Recursive=True)["Parameters"]
    )[0]
    backend.ssm.delete_parameter(Name=name)
    calls = _count_calls(backend)
    seed_simulated_aws(backend)
    assert calls.calls["PutParameter"] == 1 and calls.calls["DescribeImages"] == 1
    assert backend.ssm.get_parameter(Name=name)["Parameter"]["Value"].startswith("ami-")
