"""The hourly course-usage booking against moto: the course's EFS, snapshots and S3 archives by size and hours,
a student's transfer out (CloudWatch NetworkOut) in their own spend, all once however often the job runs."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import boto3
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.efs.models import efs_backends
from sqlalchemy import func, select

from classroom.db import make_session_factory
from classroom.jobs.context import JobContext, use_context
from classroom.models import CourseCharge, SpendDaily, SpendTotal
from classroom.roles import StaffLevel
from classroom.services.course_money import course_money
from classroom.services.workspaces import request_workspace
from config.catalog import load_catalog
from config.prices import load_prices
from provisioning.aws import AwsBackend
from provisioning.backend import CloudError
from provisioning.course_cloud import course_key
from provisioning.jobs.reconcile import reconcile_workspaces
from provisioning.jobs.workspace import provision_workspace
from provisioning.usage import Sender, book_course_usage, hour_floor, transfer_window
from tests.support.budget import make_policy
from tests.support.factories import make_course, make_person

PRICES = load_prices().region("us-east-1")
GIB = 1024**3
# us-east-1 list prices, written out here rather than read from config/prices.json
EFS_GB_MONTH, SNAPSHOT_GB_MONTH, S3_GB_MONTH, OUT_GB = (Decimal(p) for p in ("0.30", "0.05", "0.023", "0.09"))


@pytest.fixture
def job_ctx(settings, backend, redis, engine):  # type: ignore[no-untyped-def]
    ctx = JobContext(settings, make_session_factory(engine), redis, backend)
    use_context(ctx)
    yield ctx
    use_context(None)


def _hours(start: datetime, end: datetime) -> Decimal:
    return Decimal((end - start) // timedelta(microseconds=1)) / Decimal(3_600_000_000)


def _close(booked: Decimal, expected: Decimal) -> bool:
    """Equal to the ledger's precision (amounts are kept to 1E-12 dollars)."""
    return abs(booked - expected) <= Decimal("1E-12")


def _student_workspace(session, course, person):  # type: ignore[no-untyped-def]
    ws, _ = request_workspace(
        session,
        course_id=course.id,
        person_id=person.id,
        link_key="hw1",
        link_title="HW1",
        template=load_catalog().get("ml-cpu-student"),  # type: ignore[arg-type]
        region="us-east-1",
    )
    session.commit()
    assert provision_workspace(ws.id) == "launched"
    reconcile_workspaces()  # AWS says running: the row says so too
    session.refresh(ws)
    assert ws.state.value == "running"
    return ws


def test_course_storage_and_student_transfer_are_booked_once(session, job_ctx, backend: AwsBackend) -> None:
    course = make_course(session, time_zone="UTC", term_end=date.today() + timedelta(days=30))
    make_policy(session, course)
    student = make_person(session, course)
    session.commit()
    ws = _student_workspace(session, course, student)  # creates the course's EFS too
    key = course_key(course.id)
    (fs,) = backend.efs.describe_file_systems()["FileSystems"]
    efs_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].file_systems_by_id[fs["FileSystemId"]]._size_value = 10 * GIB
    vol = backend.ec2.create_volume(AvailabilityZone="us-east-1a", Size=30)
    tags = [{"Key": "cwc:course", "Value": key}]
    snap = backend.ec2.create_snapshot(
        VolumeId=vol["VolumeId"], TagSpecifications=[{"ResourceType": "snapshot", "Tags": tags}]
    )
    backend.s3.put_object(Bucket=backend.bucket, Key=f"courses/{key}/archives/ws1/home.tar.gz", Body=b"x" * 4096)
    backend.s3.put_object(Bucket=backend.bucket, Key=f"courses/{key}/materials/a.txt", Body=b"not an archive")
    backend.cloudwatch.put_metric_data(
        Namespace="AWS/EC2",
        MetricData=[
            {
                "MetricName": "NetworkOut",
                "Dimensions": [{"Name": "InstanceId", "Value": ws.instance_id}],
                "Timestamp": datetime.now(UTC),
                "Value": float(2 * GIB),
                "Unit": "Bytes",
            }
        ],
    )
    seen = datetime.now(UTC)  # one time for both positions: the disks' reserve until term end stays equal
    before = course_money(session, course, seen, PRICES)
    now = datetime.now(UTC) + timedelta(hours=3)
    end = hour_floor(now)

    assert book_course_usage(session, backend, now, PRICES) == {"courses": 1, "lines": 4, "failed": 0}

    lines = {c.kind: c for c in session.scalars(select(CourseCharge).where(CourseCharge.course_id == course.id))}
    assert set(lines) == {"efs", "snapshot", "archive", "transfer"} and all(c.period_end == end for c in lines.values())
    efs, snapshot, archive, out = lines["efs"], lines["snapshot"], lines["archive"], lines["transfer"]
    assert efs.ref == fs["FileSystemId"] and efs.period_start == fs["CreationTime"] and efs.person_id is None
    assert _close(efs.amount, 10 * _hours(efs.period_start, end) * EFS_GB_MONTH / 730)
    assert snapshot.ref == snap["SnapshotId"] and snapshot.person_id is None
    assert _close(snapshot.amount, 30 * _hours(snapshot.period_start, end) * SNAPSHOT_GB_MONTH / 730)
    assert archive.ref == f"courses/{key}/archives/ws1/home.tar.gz" and archive.person_id is None
    assert _close(archive.amount, Decimal(4096) / GIB * _hours(archive.period_start, end) * S3_GB_MONTH / 730)
    assert (out.ref, out.person_id, out.quantity, out.amount) == (ws.instance_id, student.id, 2, 2 * OUT_GB)
    assert session.scalar(select(SpendDaily.transfer).where(SpendDaily.person_id == student.id)) == 2 * OUT_GB
    assert session.scalar(select(SpendTotal.spent).where(SpendTotal.person_id == student.id)) >= 2 * OUT_GB

    after = course_money(session, course, seen, PRICES)
    course_lines = efs.amount + snapshot.amount + archive.amount
    assert after.committed - before.committed == course_lines + 2 * OUT_GB  # the transfer counts once

    assert book_course_usage(session, backend, now, PRICES)["lines"] == 0  # a retried job books nothing
    assert session.scalar(select(func.sum(SpendDaily.transfer))) == 2 * OUT_GB
    later = book_course_usage(session, backend, now + timedelta(hours=1), PRICES)
    assert later["lines"] == 4  # the next hour: from where the last booking ended (the transfer: zero bytes)
    nxt = session.scalars(select(CourseCharge).where(CourseCharge.period_start == end)).all()
    assert {c.kind for c in nxt} == {"efs", "snapshot", "archive", "transfer"}
    assert _close(next(c for c in nxt if c.kind == "efs").amount, 10 * EFS_GB_MONTH / 730)


def test_transfer_window_skips_what_cannot_have_sent_and_starts_where_booking_ended() -> None:
    t = datetime(2024, 10, 15, 9, 40, tzinfo=UTC)
    end = datetime(2024, 10, 15, 12, tzinfo=UTC)
    running = Sender(7, "i-1", 3, t, True, t)
    assert transfer_window(running, {}, end) == (datetime(2024, 10, 15, 9, tzinfo=UTC), end)
    assert transfer_window(running, {(7, "transfer", "i-1"): end - timedelta(hours=1)}, end) == (
        end - timedelta(hours=1),
        end,
    )
    assert transfer_window(running, {(7, "transfer", "i-1"): end}, end) is None
    stopped_long_ago = Sender(7, "i-2", None, t, False, t)
    assert transfer_window(stopped_long_ago, {(7, "transfer", "i-2"): t + timedelta(minutes=20)}, end) is None
    assert transfer_window(stopped_long_ago, {(7, "transfer", "i-2"): t - timedelta(minutes=5)}, end) is not None


def test_a_staff_workspace_transfer_is_a_course_line(session, job_ctx, backend: AwsBackend) -> None:
    course = make_course(session, time_zone="UTC")
    ta = make_person(session, course, level=StaffLevel.TA)
    session.commit()
    ws = _student_workspace(session, course, ta)
    backend.cloudwatch.put_metric_data(
        Namespace="AWS/EC2",
        MetricData=[
            {
                "MetricName": "NetworkOut",
                "Dimensions": [{"Name": "InstanceId", "Value": ws.instance_id}],
                "Timestamp": datetime.now(UTC),
                "Value": float(GIB),
            }
        ],
    )
    book_course_usage(session, backend, datetime.now(UTC) + timedelta(hours=2), PRICES)
    out = session.scalar(select(CourseCharge).where(CourseCharge.kind == "transfer"))
    assert out is not None and (out.person_id, out.amount) == (None, OUT_GB)
    assert session.scalar(select(func.count()).select_from(SpendDaily)) == 0


def test_aws_errors_reading_usage_are_the_ports_error(aws_env: str) -> None:
    missing = AwsBackend(boto3.Session(), region="us-east-1", bucket="no-such-bucket", endpoint_url=aws_env)
    with pytest.raises(CloudError):
        missing.course_stored("c1", "")
    with pytest.raises(CloudError):
        missing.course_stored("c1", "fs-00000000")
