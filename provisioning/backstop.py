"""The AWS-side backstop for what the lease cannot cover: a CloudWatch alarm on each instance that stops it from
AWS itself (`arn:aws:automate:<region>:ec2:stop`) after hours of idle CPU, with no agent and no tool involved.

The lease (provisioning/lease.py) relies on the agent's root-owned poweroff; if a student ever gained root and
cancelled it while the tool is down, this alarm still stops an idle instance. Budget-level actions (AWS Budgets
STOP_EC2_INSTANCES per course) take instance ids and an IAM execution role: see README, "AWS-side backstop".
"""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import ClientError

log = logging.getLogger(__name__)

IDLE_CPU_PERCENT = 2.0
IDLE_HOURS = 4  # well above the course idle limit: the tool's own idle stop comes first when it is up


def alarm_name(instance_id: str) -> str:
    """The backstop alarm's name for one instance."""
    return f"cwc-backstop-{instance_id}"


def ensure_idle_stop_alarm(cloudwatch: Any, region: str, instance_id: str, tags: dict[str, str]) -> bool:
    """Create (or update) the instance's idle-stop alarm; False, logged, when AWS refuses (the lease still holds)."""
    try:
        cloudwatch.put_metric_alarm(
            AlarmName=alarm_name(instance_id),
            AlarmDescription="Cloud Workstation backstop: stop a workspace idle for hours, even with the tool down",
            Namespace="AWS/EC2",
            MetricName="CPUUtilization",
            Dimensions=[{"Name": "InstanceId", "Value": instance_id}],
            Statistic="Maximum",
            Period=3600,
            EvaluationPeriods=IDLE_HOURS,
            Threshold=IDLE_CPU_PERCENT,
            ComparisonOperator="LessThanThreshold",
            TreatMissingData="missing",
            AlarmActions=[f"arn:aws:automate:{region}:ec2:stop"],
            Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
        )
    except ClientError as exc:
        log.warning("backstop alarm for %s not created: %s", instance_id, exc.response["Error"]["Code"])
        return False
    return True


def delete_alarms(cloudwatch: Any, instance_ids: list[str]) -> None:
    """Remove terminated instances' alarms (100 names per call); failures are logged, never raised."""
    for i in range(0, len(instance_ids), 100):
        try:
            cloudwatch.delete_alarms(AlarmNames=[alarm_name(x) for x in instance_ids[i : i + 100]])
        except ClientError as exc:
            log.warning("backstop alarms not deleted: %s", exc.response["Error"]["Code"])
