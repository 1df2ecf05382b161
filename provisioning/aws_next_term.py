"""Next term's materials: copy one course's materials prefix to another's, inside the bucket (S3 CopyObject: the
bytes never pass through the tool). Idempotent: a copy run again overwrites each object with the same bytes."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from provisioning.backend import MANAGED_BY, CloudError


def materials_prefix(course_key: str) -> str:
    return f"courses/{course_key}/materials/"


class NextTermMixin:
    """AwsBackend's part of the port for next term (needs s3 and bucket)."""

    s3: Any
    bucket: str

    def copy_materials(self, from_course_key: str, to_course_key: str) -> int:
        """Copy every material of one course to another's prefix; returns how many objects were copied."""
        source, dest = materials_prefix(from_course_key), materials_prefix(to_course_key)
        count = 0
        try:
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=source):
                for obj in page.get("Contents", []):
                    self.s3.copy_object(
                        Bucket=self.bucket,
                        Key=dest + obj["Key"][len(source) :],
                        CopySource={"Bucket": self.bucket, "Key": obj["Key"]},
                        ServerSideEncryption="AES256",
                        TaggingDirective="REPLACE",
                        Tagging=f"cwc:managed-by={MANAGED_BY}&cwc:course={to_course_key}",
                    )
                    count += 1
        except ClientError as exc:
            raise CloudError(f"S3 could not copy the materials of {from_course_key}: {exc}") from exc
        return count
