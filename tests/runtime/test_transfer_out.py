"""The local runtime plays EC2's part for data transfer out: the bytes its SSH server sends a workspace's clients
are published as CloudWatch NetworkOut datapoints of the instance (real asyncssh, real moto CloudWatch), which the
hourly course-usage booking then books to the student like an EC2 instance's traffic."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncssh
import boto3
from botocore.config import Config
from sqlalchemy import select

from classroom.models import CourseCharge, SpendDaily
from config.prices import load_prices
from provisioning.aws import AwsBackend
from provisioning.usage import book_course_usage, hour_floor
from tests.runtime.conftest import ssh_run

PRICES = load_prices().region("us-east-1")
OUT_GB = Decimal("0.09")  # us-east-1's data transfer out per GB, written out here rather than read from the table
GIB = Decimal(1024**3)
DOWNLOAD = 2_000_000


def _network_out(backend: AwsBackend, instance_id: str) -> tuple[int, int]:
    """(sum of bytes, number of datapoints) CloudWatch holds for the instance's NetworkOut over the last day."""
    now = datetime.now(UTC)
    points = backend.cloudwatch.get_metric_statistics(
        Namespace="AWS/EC2", MetricName="NetworkOut", Dimensions=[{"Name": "InstanceId", "Value": instance_id}],
        StartTime=now - timedelta(days=1), EndTime=now + timedelta(hours=1), Period=60,
        Statistics=["Sum", "SampleCount"],
    )["Datapoints"]  # fmt: skip
    return int(sum(p["Sum"] for p in points)), int(sum(p["SampleCount"] for p in points))


async def _sftp_get(port: int, login: str, key: asyncssh.SSHKey, path: str) -> int:
    async with asyncssh.connect(
        "127.0.0.1", port, username=login, client_keys=[key], known_hosts=None, agent_path=None, config=None,
    ) as conn, conn.start_sftp_client() as sftp, sftp.open(path, "rb") as f:  # fmt: skip
        return len(await f.read())


def test_a_download_over_ssh_is_published_as_network_out_and_booked(runtime, make_workspace, session, backend):
    emily = make_workspace()
    instance = emily.workspace.instance_id
    runtime.sync()  # nothing sent yet: no datapoint
    assert _network_out(backend, instance) == (0, 0)

    code, out, err = ssh_run(runtime.rt.port, emily.login, [emily.key], f"head -c {DOWNLOAD} /dev/zero | tr '\\0' x")
    assert (code, len(out)) == (0, DOWNLOAD), err
    runtime.sync()
    sent, points = _network_out(backend, instance)
    assert DOWNLOAD <= sent < 2_500_000 and points == 1  # the output plus SSH's framing, once
    runtime.sync()  # no new traffic: nothing published again
    assert _network_out(backend, instance) == (sent, 1)

    now = datetime.now(UTC) + timedelta(hours=2)
    assert book_course_usage(session, backend, now, PRICES)["failed"] == 0
    (line,) = session.scalars(select(CourseCharge).where(CourseCharge.kind == "transfer")).all()
    assert (line.ref, line.person_id, line.period_end) == (instance, emily.person.id, hour_floor(now))
    assert line.quantity == (Decimal(sent) / GIB).quantize(Decimal("0.000001"))  # GB, as the column keeps it
    assert abs(line.amount - Decimal(sent) / GIB * OUT_GB) <= Decimal("1E-12")
    assert session.scalar(select(SpendDaily.transfer).where(SpendDaily.person_id == emily.person.id)) == line.amount


def test_an_sftp_download_counts_and_survives_a_failed_publish(runtime, make_workspace, backend, session):
    emily = make_workspace()
    instance = emily.workspace.instance_id
    home = runtime.rt.home(instance)
    assert ssh_run(runtime.rt.port, emily.login, [emily.key], f"head -c {DOWNLOAD} /dev/urandom > big.bin")[0] == 0
    assert (home / "big.bin").stat().st_size == DOWNLOAD
    working = backend.cloudwatch
    backend.cloudwatch = boto3.client(  # CloudWatch unreachable: the publish fails (botocore's error, the port's)
        "cloudwatch", region_name="us-east-1", endpoint_url="http://127.0.0.1:9",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1),
    )  # fmt: skip
    try:
        assert asyncio.run(_sftp_get(runtime.rt.port, emily.login, emily.key, "big.bin")) == DOWNLOAD
        runtime.sync()
        assert sum(runtime.rt.traffic.pending.values()) >= DOWNLOAD  # kept for the next pass
    finally:
        backend.cloudwatch = working
    assert _network_out(backend, instance) == (0, 0)
    runtime.sync()
    sent, points = _network_out(backend, instance)
    assert DOWNLOAD <= sent < 2_500_000 and points == 1
    assert runtime.rt.traffic.pending == {}


def test_what_is_sent_after_the_last_pass_is_published_at_stop(runtime, make_workspace, backend):
    emily = make_workspace()
    code, out, _ = ssh_run(runtime.rt.port, emily.login, [emily.key], f"head -c {DOWNLOAD} /dev/zero | tr '\\0' y")
    assert (code, len(out)) == (0, DOWNLOAD)
    assert _network_out(backend, emily.workspace.instance_id) == (0, 0)  # no sync pass yet
    runtime.stop()
    sent, points = _network_out(backend, emily.workspace.instance_id)
    assert DOWNLOAD <= sent < 2_500_000 and points == 1
