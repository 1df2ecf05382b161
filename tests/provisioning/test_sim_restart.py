"""A restarted `make run` keeps its simulated account; a workspace whose instance really vanished is told so."""

# ruff: noqa: F811 - the fixtures `student` and `job_ctx` are imported from test_workspace_flow

from __future__ import annotations

import io
import logging
from contextlib import ExitStack

import boto3
import requests
from sqlalchemy import select

from classroom.logs import configure_logging
from classroom.models import Notification, Workspace
from classroom.workspaces.lifecycle import WorkspaceState
from dev.server import quiet_terminal
from dev.services import start_moto
from provisioning.jobs.reconcile import reconcile_workspaces
from provisioning.jobs.workspace import provision_workspace
from provisioning.sim_state import STATE_FILE, load_state
from tests.provisioning.test_workspace_flow import _request, job_ctx, student  # noqa: F401 - fixtures

S = WorkspaceState


def _instances(url: str) -> dict[str, str]:
    ec2 = boto3.client("ec2", endpoint_url=url, region_name="us-east-1")
    reservations = ec2.describe_instances()["Reservations"]
    return {i["InstanceId"]: i["State"]["Name"] for r in reservations for i in r["Instances"]}


def test_a_restarted_simulated_account_keeps_its_instances_and_objects(tmp_path, aws_env, backend):
    env: dict[str, str] = {}
    with ExitStack() as stack:  # first `make run`
        url = start_moto(env, stack, tmp_path)
        ec2 = boto3.client("ec2", endpoint_url=url, region_name="us-east-1")
        image = sorted(i["ImageId"] for i in ec2.describe_images(Owners=["099720109477"])["Images"])[0]
        kept = ec2.run_instances(ImageId=image, MinCount=2, MaxCount=2, InstanceType="t3.medium")["Instances"]
        ec2.stop_instances(InstanceIds=[kept[1]["InstanceId"]])
        boto3.client("s3", endpoint_url=url).put_object(Bucket="cwc-test", Key="materials/hw1.csv", Body=b"a,b")
    assert (tmp_path / STATE_FILE).exists()
    requests.post(f"{aws_env}/moto-api/reset", timeout=10).raise_for_status()  # what a new process starts with
    assert _instances(aws_env) == {}

    with ExitStack() as stack:  # second `make run`
        url = start_moto(env, stack, tmp_path)
        assert _instances(url) == {kept[0]["InstanceId"]: "running", kept[1]["InstanceId"]: "stopped"}
        body = boto3.client("s3", endpoint_url=url).get_object(Bucket="cwc-test", Key="materials/hw1.csv")["Body"]
        assert body.read() == b"a,b"


def test_an_unreadable_state_file_is_set_aside_and_the_account_starts_empty(tmp_path, aws_env):
    (tmp_path / STATE_FILE).write_bytes(b"not a pickle")
    assert load_state(tmp_path / STATE_FILE) is False
    assert (tmp_path / "simulated-aws.unreadable").read_bytes() == b"not a pickle"
    assert not (tmp_path / STATE_FILE).exists()


def test_a_workspace_whose_instance_really_vanished_ends_and_its_student_is_told_once(
    session, student, job_ctx, aws_env
):
    course, person = student
    ws, _ = _request(session, course, person)
    provision_workspace(ws.id)
    reconcile_workspaces()
    session.refresh(ws)
    assert ws.state is S.RUNNING
    requests.post(f"{aws_env}/moto-api/reset", timeout=10).raise_for_status()  # the account lost everything
    reconcile_workspaces()  # first miss: AWS lists may lag, nothing ends yet
    session.refresh(ws)
    assert ws.state is S.RUNNING
    assert session.scalars(select(Notification)).all() == []
    reconcile_workspaces()
    reconcile_workspaces()
    session.refresh(ws)
    assert ws.state is S.TERMINATED
    notes = session.scalars(select(Notification).where(Notification.person_id == person.id)).all()
    assert [n.subject for n in notes] == ["Your workspace Homework 1 was lost"]
    assert ws.instance_id in notes[0].body and "start a new one" in notes[0].body
    assert session.scalar(select(Workspace.state).where(Workspace.id == ws.id)) is S.TERMINATED


def test_the_terminal_announced_as_warnings_and_errors_prints_no_info_lines(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    root = logging.getLogger()
    before = (root.level, list(root.handlers))
    try:
        configure_logging("INFO", json_lines=False)
        quiet_terminal()
        logging.getLogger("botocore.credentials").info("Found credentials in environment variables.")
        logging.getLogger("provisioning").warning("a warning still shows")
    finally:
        root.handlers[:] = before[1]
        root.setLevel(before[0])
    assert "Found credentials" not in stream.getvalue()
    assert "a warning still shows" in stream.getvalue()
