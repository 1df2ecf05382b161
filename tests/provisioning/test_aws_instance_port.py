"""The port's per-instance calls on the real adapter over moto: user data, tags, a material fetched to a file;
every AWS error comes back as CloudError (the runtime and the simulated agents never touch boto3)."""

from __future__ import annotations

import pytest
from botocore.stub import Stubber

from provisioning.backend import CloudError


def _instance(backend, user_data: str = "") -> str:  # type: ignore[no-untyped-def]
    images = backend.ec2.describe_images(Owners=["099720109477"])["Images"]
    raw = backend.ec2.run_instances(
        ImageId=sorted(i["ImageId"] for i in images)[0], InstanceType="t3.medium", MinCount=1, MaxCount=1,
        UserData=user_data,
    )  # fmt: skip
    return str(raw["Instances"][0]["InstanceId"])


def _tags(backend, instance_id: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    found = backend.ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [instance_id]}])["Tags"]
    return {t["Key"]: t["Value"] for t in found}


def test_user_data_comes_back_as_text(backend):  # type: ignore[no-untyped-def]
    instance = _instance(backend, "#!/bin/sh\nCWC_CONFIG='{}'\n")
    assert backend.user_data(instance) == "#!/bin/sh\nCWC_CONFIG='{}'\n"
    assert backend.user_data(_instance(backend)) == ""


def test_tags_are_set_replaced_and_removed(backend):  # type: ignore[no-untyped-def]
    instance = _instance(backend)
    backend.tag_instance(instance, {"cwc:lease": "1.5", "cwc:beats": "1"})
    backend.tag_instance(instance, {"cwc:beats": "2"})
    assert _tags(backend, instance) == {"cwc:lease": "1.5", "cwc:beats": "2"}
    backend.untag_instance(instance, ["cwc:lease", "cwc:not-there"])
    assert _tags(backend, instance) == {"cwc:beats": "2"}


def test_the_same_tags_go_to_several_instances_in_one_call(backend, ec2_calls):  # type: ignore[no-untyped-def]
    first, second = _instance(backend), _instance(backend)
    backend.tag_instances([first, second], {"cwc:lease": "9.5"})
    backend.tag_instances([first, second], {})  # nothing to write: no call
    assert ec2_calls.calls["CreateTags"] == 1
    assert _tags(backend, first) == _tags(backend, second) == {"cwc:lease": "9.5"}


def test_errors_map_to_cloud_error(backend, tmp_path):  # type: ignore[no-untyped-def]
    with pytest.raises(CloudError):
        backend.user_data("i-0123456789abcdef0")
    with pytest.raises(CloudError):
        backend.download_material("c-1", "missing.csv", tmp_path / "x")
    assert not (tmp_path / "x").exists()
    with Stubber(backend.ec2) as ec2:  # moto tags an unknown id; AWS refuses, as stubbed here
        ec2.add_client_error("create_tags", "InvalidInstanceID.NotFound", "The instance ID does not exist")
        ec2.add_client_error("delete_tags", "InvalidID", "The ID is not valid")
        with pytest.raises(CloudError, match="InvalidInstanceID.NotFound"):
            backend.tag_instance("i-0123456789abcdef0", {"a": "b"})
        with pytest.raises(CloudError, match="InvalidID"):
            backend.untag_instance("i-0123456789abcdef0", ["a"])


def test_materials_of_a_missing_bucket_are_the_ports_error(aws_env, tmp_path):  # type: ignore[no-untyped-def]
    import boto3

    from provisioning.aws import AwsBackend
    from provisioning.materials_mirror import mirror_materials

    missing = AwsBackend(boto3.Session(), region="us-east-1", bucket="no-such-bucket", endpoint_url=aws_env)
    with pytest.raises(CloudError, match="NoSuchBucket"):
        missing.list_materials("c-1")
    with pytest.raises(CloudError, match="keeps its last copy"):
        mirror_materials(missing, "c-1", tmp_path)


def test_a_material_is_fetched_through_the_port(backend, tmp_path):  # type: ignore[no-untyped-def]
    backend.upload_material("c-1", "hw1/data.csv", b"a,b\n", overwrite=False)
    backend.download_material("c-1", "hw1/data.csv", tmp_path / "data.csv")
    assert (tmp_path / "data.csv").read_bytes() == b"a,b\n"
