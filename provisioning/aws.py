"""The AWS adapter of CloudBackend (boto3). The same code runs against real AWS and the local moto server.

Longer than 300 lines because AwsBackend is the port's one AWS adapter, method for method; its archive and usage
parts are already mixins (aws_archive.py, aws_usage.py).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, NoCredentialsError

from provisioning.aws_archive import ArchiveMixin
from provisioning.aws_blobs import BlobMixin
from provisioning.aws_clients import ClientFactory, LazyClient
from provisioning.aws_failures import AWS_FAILURES, TRANSPORT_FAILURES
from provisioning.aws_instances import InstanceMixin
from provisioning.aws_materials import MaterialsMixin
from provisioning.aws_next_term import NextTermMixin
from provisioning.aws_restore import RestoreMixin
from provisioning.aws_usage import UsageMixin
from provisioning.aws_volumes import VolumeMixin
from provisioning.backend import (
    MANAGED_BY,
    BlockDevice,
    CapacityError,
    CloudError,
    CourseStorage,
    InstanceInfo,
    LaunchSpec,
    MaterialExists,
)
from provisioning.backstop import delete_alarms, ensure_idle_stop_alarm
from provisioning.ratelimit import RedisRateLimiter

log = logging.getLogger(__name__)

MUTATING = (
    "RunInstances",
    "StartInstances",
    "StopInstances",
    "TerminateInstances",
    "CreateTags",
    "CreateSecurityGroup",
    "AuthorizeSecurityGroupIngress",
)
CAPACITY_CODES = {"InsufficientInstanceCapacity", "InsufficientCapacity", "Unsupported"}
DESCRIBE_PAGE = 1000


def _cloud_error(action: str, exc: Exception) -> CloudError:
    """The port's error for any AWS failure (codes such as throttling or IncorrectInstanceState stay readable)."""
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return CloudError(f"AWS could not {action} the workspace ({err.get('Code', '?')}): {err.get('Message', '')}")
    return CloudError(f"AWS could not {action} the workspace: {exc}")


@contextmanager
def _mapped(action: str) -> Iterator[None]:
    """Map AWS_FAILURES (error codes, throttling after retries, timeouts, an answer that is not AWS's) to CloudError."""
    try:
        yield
    except AWS_FAILURES as exc:
        raise _cloud_error(action, exc) from exc


def _tags(raw: list[dict[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in raw or []}


def _tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


BURSTABLE = ("t2.", "t3.", "t3a.", "t4g.")  # instance families with CPU credits


def _info(raw: dict[str, Any]) -> InstanceInfo:
    return InstanceInfo(
        instance_id=raw["InstanceId"],
        state=raw["State"]["Name"],
        tags=_tags(raw.get("Tags")),
        availability_zone=raw.get("Placement", {}).get("AvailabilityZone", ""),
        public_ip=raw.get("PublicIpAddress", ""),
        state_reason=raw.get("StateReason", {}).get("Code", ""),
        instance_type=raw.get("InstanceType", ""),
        launched_at=raw.get("LaunchTime"),
        block_devices=tuple(
            BlockDevice(m["Ebs"]["VolumeId"], bool(m["Ebs"].get("DeleteOnTermination", False)))
            for m in raw.get("BlockDeviceMappings", [])
            if m.get("Ebs", {}).get("VolumeId")
        ),
    )


class AwsBackend(
    ArchiveMixin, BlobMixin, UsageMixin, InstanceMixin, VolumeMixin, MaterialsMixin, RestoreMixin, NextTermMixin
):
    """CloudBackend on boto3 with adaptive retries and a shared rate limit on mutating EC2 calls."""

    ec2 = LazyClient()
    efs = LazyClient()
    ssm = LazyClient()
    s3 = LazyClient()
    iam = LazyClient()
    cloudwatch = LazyClient()

    def __init__(
        self,
        session: boto3.Session,
        *,
        region: str,
        bucket: str,
        instance_profile: str = "",
        endpoint_url: str | None = None,
        limiter: RedisRateLimiter | None = None,
        max_attempts: int = 8,
        image_parameter_prefix: str = "",
    ) -> None:
        self.region, self.bucket, self.instance_profile = region, bucket, instance_profile
        self.image_parameter_prefix = image_parameter_prefix
        self.simulated = endpoint_url is not None  # the local moto server: see aws_archive for what changes
        self.agent_archives = not self.simulated  # real EC2: only the agent can read the home's volume
        cfg = Config(
            region_name=region,
            retries={"mode": "adaptive", "max_attempts": max_attempts},
            connect_timeout=5,
            read_timeout=30,
        )
        self._clients = ClientFactory(session, cfg, endpoint_url)  # each client made on first use (aws_clients.py)
        self._images: dict[str, str] = {}
        self._subnets: list[tuple[str, str]] | None = None
        if limiter is not None:

            def wait_for_slot(**_: object) -> None:  # must return None: a value would replace the AWS response
                limiter.acquire()

            for op in MUTATING:
                self.ec2.meta.events.register(f"before-call.ec2.{op}", wait_for_slot)

    # --- course-level resources -----------------------------------------------------------------
    def _default_vpc(self) -> str:
        vpcs = self.ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
        if not vpcs:
            raise CloudError("This AWS region has no default VPC; create one or configure subnets.")
        return str(vpcs[0]["VpcId"])

    def subnets(self) -> list[tuple[str, str]]:
        """(subnet id, availability zone) of the default VPC, in a stable order."""
        if self._subnets is None:
            raw = self.ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [self._default_vpc()]}])["Subnets"]
            self._subnets = sorted((s["SubnetId"], s["AvailabilityZone"]) for s in raw)
        return self._subnets

    def ensure_course_network(self, course_key: str, allowed_ssh_cidrs: tuple[str, ...]) -> str:
        """The course's security group: SSH only from the allowed CIDRs, NFS only from itself."""
        name = f"cwc-course-{course_key}"
        found = self.ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [name]}])["SecurityGroups"]
        if found:
            return str(found[0]["GroupId"])
        group = self.ec2.create_security_group(
            GroupName=name,
            Description=f"Cloud Workstation course {course_key}",
            VpcId=self._default_vpc(),
            TagSpecifications=[
                {
                    "ResourceType": "security-group",
                    "Tags": _tag_list({"cwc:managed-by": MANAGED_BY, "cwc:course": course_key}),
                }
            ],
        )
        gid = str(group["GroupId"])
        rules: list[dict[str, Any]] = [
            {
                "IpProtocol": "tcp",
                "FromPort": 2049,
                "ToPort": 2049,
                "UserIdGroupPairs": [{"GroupId": gid, "Description": "EFS from workspaces"}],
            }
        ]
        if allowed_ssh_cidrs:
            rules.append(
                {
                    "IpProtocol": "tcp",
                    "FromPort": 22,
                    "ToPort": 22,
                    "IpRanges": [{"CidrIp": c, "Description": "SSH"} for c in allowed_ssh_cidrs],
                }
            )
        self.ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=rules)
        return gid

    def ensure_course_storage(self, course_key: str, security_group_id: str) -> CourseStorage:
        """Encrypted EFS for course materials: students mount read-only, staff read-write."""
        token = f"cwc-materials-{course_key}"
        found = [f for f in self.efs.describe_file_systems()["FileSystems"] if f.get("CreationToken") == token]
        if found:
            fs_id = found[0]["FileSystemId"]
        else:
            fs_id = self.efs.create_file_system(
                CreationToken=token,
                Encrypted=True,
                PerformanceMode="generalPurpose",
                Tags=_tag_list({"cwc:managed-by": MANAGED_BY, "cwc:course": course_key, "Name": token}),
            )["FileSystemId"]
            for subnet_id, _az in self.subnets():
                self.efs.create_mount_target(FileSystemId=fs_id, SubnetId=subnet_id, SecurityGroups=[security_group_id])
        points = {
            p["ClientToken"]: p["AccessPointId"]
            for p in self.efs.describe_access_points(FileSystemId=fs_id)["AccessPoints"]
            if p.get("ClientToken")
        }
        student = points.get(f"{token}-student") or self._access_point(fs_id, f"{token}-student", course_key, "student")
        staff = points.get(f"{token}-staff") or self._access_point(fs_id, f"{token}-staff", course_key, "staff")
        self.efs.put_file_system_policy(FileSystemId=fs_id, Policy=json.dumps(self._fs_policy(fs_id, staff)))
        return CourseStorage(fs_id, student, staff)

    def _access_point(self, fs_id: str, token: str, course_key: str, audience: str) -> str:
        return str(
            self.efs.create_access_point(
                ClientToken=token,
                FileSystemId=fs_id,
                PosixUser={"Uid": 1000, "Gid": 1000},
                RootDirectory={
                    "Path": "/materials",
                    "CreationInfo": {"OwnerUid": 1000, "OwnerGid": 1000, "Permissions": "0755"},
                },
                Tags=_tag_list({"cwc:managed-by": MANAGED_BY, "cwc:course": course_key, "cwc:audience": audience}),
            )["AccessPointId"]
        )

    def _arn(self, resource: str) -> str:
        return f"arn:aws:elasticfilesystem:{self.region}:*:{resource}"

    def _fs_policy(self, fs_id: str, staff_ap: str) -> dict[str, Any]:
        arn = f"arn:aws:elasticfilesystem:{self.region}:*:file-system/{fs_id}"
        return {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ReadForWorkspaces",
                    "Effect": "Allow",
                    "Principal": {"AWS": "*"},
                    "Action": ["elasticfilesystem:ClientMount"],
                    "Resource": arn,
                    "Condition": {"Bool": {"elasticfilesystem:AccessedViaMountTarget": "true"}},
                },
                {
                    "Sid": "WriteOnlyThroughStaffAccessPoint",
                    "Effect": "Allow",
                    "Principal": {"AWS": "*"},
                    "Action": ["elasticfilesystem:ClientWrite"],
                    "Resource": arn,
                    "Condition": {
                        "StringEquals": {"elasticfilesystem:AccessPointArn": self._arn(f"access-point/{staff_ap}")}
                    },
                },
            ],
        }

    # --- instances ------------------------------------------------------------------------------
    def resolve_image(self, image: str) -> str:
        """An AMI id from `ami-…` or from a public SSM parameter (`ssm:/aws/service/…`)."""
        if image.startswith("ami-"):
            return image
        if image not in self._images:
            name = self.image_parameter_prefix + image.removeprefix("ssm:")
            try:
                self._images[image] = self.ssm.get_parameter(Name=name)["Parameter"]["Value"]
            except ClientError as exc:
                raise CloudError(f"The workspace image {name} is not available in {self.region}.") from exc
        return self._images[image]

    def launch(self, spec: LaunchSpec) -> InstanceInfo:
        """Start one instance, trying each subnet (availability zone) when AWS has no capacity."""
        base = {
            "ImageId": self.resolve_image(spec.image),
            "InstanceType": spec.instance_type,
            "MinCount": 1,
            "MaxCount": 1,
            "ClientToken": spec.client_token,
            "SecurityGroupIds": [spec.security_group_id],
            "UserData": spec.user_data,
            "HibernationOptions": {"Configured": spec.hibernation},
            "InstanceInitiatedShutdownBehavior": "stop",  # the agent's lease poweroff stops, never terminates
            "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled"},
            "BlockDeviceMappings": [
                {
                    "DeviceName": "/dev/sda1",
                    "Ebs": {
                        "VolumeSize": spec.volume_gb,
                        "VolumeType": "gp3",
                        "Encrypted": True,
                        "DeleteOnTermination": True,
                    },
                }
            ],
            "TagSpecifications": [{"ResourceType": r, "Tags": _tag_list(spec.tags)} for r in ("instance", "volume")],
        }
        if self.instance_profile:
            base["IamInstanceProfile"] = {"Name": self.instance_profile}
        if spec.instance_type.startswith(BURSTABLE):
            # "unlimited" (the T3 default) bills surplus CPU credits the ledger cannot see: a student training
            # at 100 % would cost up to ~3x what is metered. "standard" throttles to the baseline instead, so
            # the on-demand hourly price is the whole bill.
            base["CreditSpecification"] = {"CpuCredits": "standard"}
        tried: list[str] = []
        for subnet_id, az in self.subnets():
            try:
                raw = self.ec2.run_instances(**base, SubnetId=subnet_id)["Instances"][0]
                ensure_idle_stop_alarm(self.cloudwatch, self.region, raw["InstanceId"], spec.tags)
                return _info(raw)
            except TRANSPORT_FAILURES as exc:
                raise _cloud_error("start", exc) from exc
            except ClientError as exc:
                if exc.response["Error"]["Code"] not in CAPACITY_CODES:
                    raise CloudError(f"AWS refused to start the workspace: {exc.response['Error']['Message']}") from exc
                tried.append(az)
                log.warning("no %s capacity in %s, trying the next zone", spec.instance_type, az)
        raise CapacityError(
            f"AWS has no {spec.instance_type} capacity in {self.region} right now (tried {', '.join(tried)}). "
            "Nothing was started and nothing is charged. Try again in a few minutes."
        )

    def stop(self, instance_ids: list[str], *, hibernate: bool, force: bool = False) -> bool:
        """Stop (hibernating where asked and possible; `force` for a stuck stop); True if hibernation was used."""
        if not instance_ids:
            return False
        if hibernate and not force:
            try:
                self.ec2.stop_instances(InstanceIds=instance_ids, Hibernate=True)
                return True
            except ClientError as exc:
                if exc.response["Error"]["Code"] not in (
                    "UnsupportedHibernationConfiguration",
                    "UnsupportedOperation",
                    "IncorrectInstanceState",
                ):
                    raise _cloud_error("stop", exc) from exc
                log.info("hibernation not possible (%s); stopping instead", exc.response["Error"]["Code"])
            except TRANSPORT_FAILURES as exc:
                raise _cloud_error("stop", exc) from exc
        with _mapped("stop"):
            self.ec2.stop_instances(InstanceIds=instance_ids, **({"Force": True} if force else {}))
        return False

    def start(self, instance_ids: list[str]) -> None:
        """Start stopped or hibernated instances."""
        if instance_ids:
            with _mapped("start"):
                self.ec2.start_instances(InstanceIds=instance_ids)

    def terminate(self, instance_ids: list[str]) -> None:
        """Terminate instances (their encrypted root volumes go with them)."""
        if instance_ids:
            with _mapped("remove"):
                self.ec2.terminate_instances(InstanceIds=instance_ids)
                delete_alarms(self.cloudwatch, instance_ids)

    def describe_managed(self, states: tuple[str, ...] = ()) -> list[InstanceInfo]:
        """Every instance we manage (in these AWS states, when given), by tag, 1,000 per call."""
        filters = [{"Name": "tag:cwc:managed-by", "Values": [MANAGED_BY]}]
        if states:
            filters.append({"Name": "instance-state-name", "Values": list(states)})
        return self._describe(Filters=filters)

    def describe(self, instance_ids: list[str]) -> list[InstanceInfo]:
        """These instances, in batches of 1,000 ids per call."""
        out: list[InstanceInfo] = []
        for i in range(0, len(instance_ids), DESCRIBE_PAGE):
            out += self._describe(Filters=[{"Name": "instance-id", "Values": instance_ids[i : i + DESCRIBE_PAGE]}])
        return out

    def _describe(self, **kwargs: Any) -> list[InstanceInfo]:
        out: list[InstanceInfo] = []
        token: str | None = None
        while True:
            with _mapped("describe"):
                page = self.ec2.describe_instances(
                    MaxResults=DESCRIBE_PAGE, **kwargs, **({"NextToken": token} if token else {})
                )
            out += [_info(i) for r in page["Reservations"] for i in r["Instances"]]
            token = page.get("NextToken")
            if not token:
                return out

    def ensure_instance_profile(self) -> None:
        """Create the workspaces' role and instance profile: read course materials, mount EFS, nothing else."""
        name = self.instance_profile
        try:
            self.iam.get_instance_profile(InstanceProfileName=name)
            return
        except ClientError:
            pass
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "ec2.amazonaws.com"}}
            ],
        }
        self.iam.create_role(
            RoleName=name, AssumeRolePolicyDocument=json.dumps(trust), Tags=_tag_list({"cwc:managed-by": MANAGED_BY})
        )
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["s3:GetObject", "s3:ListBucket"],
                    "Resource": [f"arn:aws:s3:::{self.bucket}", f"arn:aws:s3:::{self.bucket}/courses/*/materials/*"],
                },
                {"Effect": "Allow", "Action": ["elasticfilesystem:ClientMount"], "Resource": "*"},
            ],
        }
        self.iam.put_role_policy(RoleName=name, PolicyName="cwc-workspace", PolicyDocument=json.dumps(policy))
        self.iam.create_instance_profile(InstanceProfileName=name)
        self.iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)

    # --- course materials and archives in S3 ------------------------------------------------------
    def ensure_bucket(self) -> None:
        """Create the bucket if missing (development; production buckets are made by the operator)."""
        try:
            self.s3.head_bucket(Bucket=self.bucket)
        except ClientError:
            self.s3.create_bucket(Bucket=self.bucket)

    def upload_material(self, course_key: str, path: str, body: bytes, *, overwrite: bool = True) -> str:
        """Store one file under the course's materials prefix; returns its key.

        Without `overwrite` the put is conditional (If-None-Match: *), so two uploads racing for one name
        cannot silently replace each other: the loser gets MaterialExists.
        """
        key = f"courses/{course_key}/materials/{path.lstrip('/')}"
        extra = {} if overwrite else {"IfNoneMatch": "*"}
        try:
            self.s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body,
                ServerSideEncryption="AES256",
                Tagging=f"cwc:managed-by={MANAGED_BY}&cwc:course={course_key}",
                **extra,
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("PreconditionFailed", "ConditionalRequestConflict"):
                raise MaterialExists(f"{path} was uploaded by someone else meanwhile.") from exc
            raise CloudError(f"The materials storage refused the upload ({code or 'error'}); try again.") from exc
        return key


def check_credentials(session: boto3.Session) -> None:
    """Fail at start-up, with what to set, when no AWS credentials are configured."""
    try:
        if session.get_credentials() is None:
            raise NoCredentialsError()
    except NoCredentialsError as exc:
        from provisioning.backend import CredentialsMissing

        raise CredentialsMissing(
            "No AWS credentials found. Set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or run with an "
            "instance role; in development `make run` uses simulated AWS."
        ) from exc
