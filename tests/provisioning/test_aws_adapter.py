"""The AWS adapter against moto: tags, network rules, encrypted volumes, EFS access points, user data, faults."""

from __future__ import annotations

import base64
import json

import pytest
from botocore.awsrequest import AWSResponse

from provisioning.backend import MANAGED_BY, CapacityError, CloudError, LaunchSpec
from provisioning.simulated import seed_simulated_aws
from provisioning.userdata import UserDataInput, agent_config_from_user_data, render_user_data
from tests.support.aws_retries import instant_retries


def _spec(backend, sg: str, n: int = 1, **overrides) -> LaunchSpec:  # type: ignore[no-untyped-def]
    data = dict(
        workspace_id=n,
        client_token=f"cwc-ws-{n}",
        image="ssm:/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id",
        instance_type="t3.medium",
        volume_gb=30,
        hibernation=True,
        user_data="#!/bin/bash\necho hi\n",
        security_group_id=sg,
        tags={
            "cwc:managed-by": MANAGED_BY,
            "cwc:workspace-id": str(n),
            "cwc:course": "c1",
            "cwc:student": "emily.chen@university.edu",
            "cwc:template": "ml-cpu-student",
        },
    )
    data.update(overrides)
    return LaunchSpec(**data)  # type: ignore[arg-type]


def _error(code: str, status: int = 400):  # type: ignore[no-untyped-def]
    body = (
        f"<Response><Errors><Error><Code>{code}</Code><Message>{code} injected</Message></Error></Errors>"
        "<RequestID>x</RequestID></Response>"
    ).encode()
    return AWSResponse("https://ec2.amazonaws.com", status, {}, _Raw(body))


def _body(request) -> str:  # type: ignore[no-untyped-def]
    body = request.body or ""
    return body.decode() if isinstance(body, bytes) else str(body)


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: object):  # type: ignore[no-untyped-def]
        yield self.body

    def read(self) -> bytes:
        return self.body


def test_security_group_never_opens_ssh_to_the_world(backend):
    sg = backend.ensure_course_network("c1", ())
    perms = backend.ec2.describe_security_groups(GroupIds=[sg])["SecurityGroups"][0]["IpPermissions"]
    assert [p["FromPort"] for p in perms] == [2049]  # NFS from the group itself only
    assert all(r["CidrIp"] != "0.0.0.0/0" for p in perms for r in p.get("IpRanges", []))
    assert backend.ensure_course_network("c1", ()) == sg  # idempotent
    sg2 = backend.ensure_course_network("c2", ("192.0.2.0/24",))
    ssh = [
        p
        for p in backend.ec2.describe_security_groups(GroupIds=[sg2])["SecurityGroups"][0]["IpPermissions"]
        if p["FromPort"] == 22
    ]
    assert [r["CidrIp"] for r in ssh[0]["IpRanges"]] == ["192.0.2.0/24"]


def test_launch_tags_encrypts_and_hibernates(backend):
    sg = backend.ensure_course_network("c1", ())
    info = backend.launch(_spec(backend, sg))
    raw = backend.ec2.describe_instances(InstanceIds=[info.instance_id])["Reservations"][0]["Instances"][0]
    tags = {t["Key"]: t["Value"] for t in raw["Tags"]}
    assert tags["cwc:managed-by"] == MANAGED_BY and tags["cwc:workspace-id"] == "1"
    assert tags["cwc:student"] == "emily.chen@university.edu" and tags["cwc:template"] == "ml-cpu-student"
    assert raw["InstanceType"] == "t3.medium" and raw["HibernationOptions"] == {"Configured": True}
    assert raw["IamInstanceProfile"]["Arn"].endswith("/cwc-workspace")
    assert [g["GroupId"] for g in raw["SecurityGroups"]] == [sg]
    volume_id = raw["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
    volume = backend.ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]
    assert volume["Encrypted"] is True and volume["Size"] == 30
    assert {t["Key"]: t["Value"] for t in volume.get("Tags", [])}["cwc:workspace-id"] == "1"
    user_data = backend.ec2.describe_instance_attribute(InstanceId=info.instance_id, Attribute="userData")
    assert base64.b64decode(user_data["UserData"]["Value"]).decode().startswith("#!/bin/bash")
    behavior = backend.ec2.describe_instance_attribute(
        InstanceId=info.instance_id, Attribute="instanceInitiatedShutdownBehavior"
    )
    assert behavior["InstanceInitiatedShutdownBehavior"]["Value"] == "stop"  # the lease's poweroff only stops
    alarm = backend.cloudwatch.describe_alarms(AlarmNames=[f"cwc-backstop-{info.instance_id}"])["MetricAlarms"][0]
    assert alarm["AlarmActions"] == ["arn:aws:automate:us-east-1:ec2:stop"]  # AWS stops it, tool or no tool
    assert alarm["Dimensions"] == [{"Name": "InstanceId", "Value": info.instance_id}]
    assert alarm["ComparisonOperator"] == "LessThanThreshold" and alarm["EvaluationPeriods"] == 4
    backend.terminate([info.instance_id])
    assert backend.cloudwatch.describe_alarms(AlarmNames=[f"cwc-backstop-{info.instance_id}"])["MetricAlarms"] == []


def test_efs_has_student_and_staff_access_points_and_a_write_policy(backend):
    sg = backend.ensure_course_network("c1", ())
    storage = backend.ensure_course_storage("c1", sg)
    assert backend.ensure_course_storage("c1", sg) == storage  # idempotent
    fs = backend.efs.describe_file_systems(FileSystemId=storage.file_system_id)["FileSystems"][0]
    assert fs["Encrypted"] is True
    points = backend.efs.describe_access_points(FileSystemId=storage.file_system_id)["AccessPoints"]
    audiences = {p["AccessPointId"]: {t["Key"]: t["Value"] for t in p["Tags"]}["cwc:audience"] for p in points}
    assert audiences == {storage.student_access_point_id: "student", storage.staff_access_point_id: "staff"}
    policy = json.loads(backend.efs.describe_file_system_policy(FileSystemId=storage.file_system_id)["Policy"])
    write = next(s for s in policy["Statement"] if "elasticfilesystem:ClientWrite" in s["Action"])
    assert write["Condition"]["StringEquals"]["elasticfilesystem:AccessPointArn"].endswith(
        storage.staff_access_point_id
    )
    targets = backend.efs.describe_mount_targets(FileSystemId=storage.file_system_id)["MountTargets"]
    assert len(targets) == len(backend.subnets())


def test_user_data_mounts_materials_read_only_and_installs_keys_and_agent():
    text = render_user_data(
        UserDataInput(
            workspace_id=7,
            agent_url="https://tool.example/api/agent/heartbeat",
            agent_token="tok-7",
            os_user="ubuntu",
            ssh_public_keys=("ssh-ed25519 AAAAC3Nza emily",),
            course_slug="cs229",
            region="us-east-1",
            file_system_id="fs-123",
            access_point_id="fsap-student",
        )
    )
    assert "fs-123:/ /mnt/cs229-materials efs tls,_netdev,noresvport,ro,accesspoint=fsap-student" in text
    assert "ssh-ed25519 AAAAC3Nza emily" in text and "cwc-agent.service" in text
    assert agent_config_from_user_data(text) == {
        "url": "https://tool.example/api/agent/heartbeat",
        "token": "tok-7",
        "workspace_id": 7,
        "user": "ubuntu",
        "home": "/home/ubuntu",
        "boot_grace_s": 900,
        "materials": "/mnt/cs229-materials",  # where the local runtime mounts the course materials too
    }


def test_capacity_shortage_moves_to_the_next_zone(backend, ec2_calls):
    sg = backend.ensure_course_network("c1", ())
    first_subnet = backend.subnets()[0][0]

    def no_capacity_in_first(request, **_):  # type: ignore[no-untyped-def]
        if "Action=RunInstances" in _body(request) and first_subnet in _body(request):
            return _error("InsufficientInstanceCapacity")
        return None

    backend.ec2.meta.events.register("before-send.ec2.RunInstances", no_capacity_in_first)
    info = backend.launch(_spec(backend, sg))
    assert info.availability_zone == backend.subnets()[1][1]
    assert len(backend.describe_managed()) == 1


def test_no_capacity_anywhere_fails_clearly_and_launches_nothing(backend):
    sg = backend.ensure_course_network("c1", ())
    backend.ec2.meta.events.register("before-send.ec2.RunInstances", lambda **_: _error("InsufficientInstanceCapacity"))
    with pytest.raises(CapacityError, match="no t3.medium capacity"):
        backend.launch(_spec(backend, sg))
    assert backend.describe_managed() == []


def test_throttling_is_retried_without_duplicates(backend, ec2_calls):
    sg = backend.ensure_course_network("c1", ())
    throttled = {"n": 0}

    def throttle_twice(**_):  # type: ignore[no-untyped-def]
        if throttled["n"] < 2:
            throttled["n"] += 1
            return _error("RequestLimitExceeded", 503)
        return None

    retries = instant_retries(backend.ec2)  # botocore's backoffs and rate limit, without the sleeping
    backend.ec2.meta.events.register("before-send.ec2.RunInstances", throttle_twice)
    backend.launch(_spec(backend, sg))
    assert throttled["n"] == 2 and len(retries.backoffs) == 2 and len(backend.describe_managed()) == 1
    assert ec2_calls.calls["RunInstances"] == 1  # one call: botocore retried it, the adapter did not launch again


def test_describe_is_batched(backend, ec2_calls):
    sg = backend.ensure_course_network("c1", ())
    backend.ec2.run_instances(
        **{
            "ImageId": backend.resolve_image(_spec(backend, sg).image),
            "InstanceType": "t3.medium",
            "MinCount": 30,
            "MaxCount": 30,
            "TagSpecifications": [
                {"ResourceType": "instance", "Tags": [{"Key": "cwc:managed-by", "Value": MANAGED_BY}]}
            ],
        }
    )
    ec2_calls.calls.clear()
    managed = backend.describe_managed()
    assert len(managed) == 30
    ids = [i.instance_id for i in managed]
    assert len(backend.describe(ids)) == 30
    assert ec2_calls.calls["DescribeInstances"] == 2


def test_hibernate_falls_back_to_stop(backend):
    sg = backend.ensure_course_network("c1", ())
    info = backend.launch(_spec(backend, sg, hibernation=False))
    backend.ec2.meta.events.register(
        "before-send.ec2.StopInstances",
        lambda request, **_: (
            _error("UnsupportedHibernationConfiguration") if "Hibernate=true" in _body(request) else None
        ),
    )
    assert backend.stop([info.instance_id], hibernate=True) is False
    assert backend.describe([info.instance_id])[0].state == "stopped"


@pytest.mark.parametrize(
    ("operation", "code", "call"),
    [
        ("StopInstances", "IncorrectInstanceState", lambda b, i: b.stop([i], hibernate=False)),
        ("StopInstances", "UnauthorizedOperation", lambda b, i: b.stop([i], hibernate=True)),
        ("StartInstances", "InsufficientInstanceCapacity", lambda b, i: b.start([i])),
        ("DescribeInstances", "UnauthorizedOperation", lambda b, i: b.describe([i])),
        ("TerminateInstances", "UnauthorizedOperation", lambda b, i: b.terminate([i])),
    ],
)
def test_every_aws_error_is_the_ports_cloud_error(backend, operation, code, call):
    sg = backend.ensure_course_network("c1", ())
    info = backend.launch(_spec(backend, sg, hibernation=False))
    backend.ec2.meta.events.register(f"before-send.ec2.{operation}", lambda **_: _error(code))
    with pytest.raises(CloudError, match=code):
        call(backend, info.instance_id)


def test_stop_forced_when_asked(backend):
    sg = backend.ensure_course_network("c1", ())
    info = backend.launch(_spec(backend, sg, hibernation=True))
    bodies = []
    backend.ec2.meta.events.register(
        "before-send.ec2.StopInstances", lambda request, **_: bodies.append(_body(request))
    )
    assert backend.stop([info.instance_id], hibernate=True, force=True) is False  # a forced stop never hibernates
    assert "Force=true" in bodies[0] and "Hibernate" not in bodies[0]


def test_materials_upload_and_listing(backend):
    backend.upload_material("c1", "datasets/mnist.csv", b"a,b\n1,2\n")
    backend.upload_material("c1", "/notebooks/lecture1.ipynb", b"{}")
    assert sorted(backend.list_materials("c1")) == [("datasets/mnist.csv", 8), ("notebooks/lecture1.ipynb", 2)]
    assert backend.list_materials("c2") == []


def test_mutating_calls_go_through_the_shared_rate_limit(aws_env, redis):
    import boto3

    from provisioning.aws import AwsBackend
    from provisioning.ratelimit import RedisRateLimiter

    waits: list[float] = []
    limiter = RedisRateLimiter(redis, per_second=2, sleep=waits.append)
    acquired: list[str] = []
    take = limiter.acquire
    limiter.acquire = lambda: (acquired.append("slot"), take())[1]  # type: ignore[method-assign]
    b = AwsBackend(
        boto3.Session(),
        region="us-east-1",
        bucket="cwc-test",
        instance_profile="cwc-workspace",
        endpoint_url=aws_env,
        limiter=limiter,
        max_attempts=2,
    )
    seed_simulated_aws(b)
    sg = b.ensure_course_network("c1", ("192.0.2.0/24",))  # 2 mutating calls: create group, authorize ingress
    b.launch(_spec(b, sg))  # a third within the same second has to wait for the next one
    assert len(b.describe_managed()) == 1
    assert len(acquired) >= 3  # counted as they happen: the Redis slots themselves expire after 2 s


def test_rate_limiter_waits_when_the_second_is_full(redis):
    from provisioning.ratelimit import RedisRateLimiter

    clock = {"t": 1000.25}
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        clock["t"] += s

    limiter = RedisRateLimiter(redis, per_second=3, key="cwc:test:rl", sleep=sleep, clock=lambda: clock["t"])
    assert [limiter.acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    waited = limiter.acquire()
    assert 0.74 < waited < 0.76 and len(slept) == 1  # slept to the next whole second


def test_archive_retention_rules_are_one_per_course_and_errors_are_ours(backend):
    from provisioning.backend import CloudError

    backend.ensure_archive_retention("c1", 365)
    backend.ensure_archive_retention("c2", 30)
    backend.ensure_archive_retention("c1", 90)  # the course changed its retention
    rules = backend.s3.get_bucket_lifecycle_configuration(Bucket=backend.bucket)["Rules"]
    assert sorted((r["ID"], r["Filter"]["Prefix"], r["Expiration"]["Days"]) for r in rules) == [
        ("cwc-archives-c1", "courses/c1/archives/", 90),
        ("cwc-archives-c2", "courses/c2/archives/", 30),
    ]
    backend.bucket = "no-such-bucket"
    with pytest.raises(CloudError):
        backend.ensure_archive_retention("c1", 365)
