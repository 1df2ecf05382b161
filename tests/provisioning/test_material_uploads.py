"""Presigned multipart uploads of course materials on the simulated account: the bytes go to S3 by URL (as a
browser sends them), an interrupted upload resumes from the parts stored, then rename and delete."""

from __future__ import annotations

import os

import pytest
import requests

from provisioning.aws_materials import PART_BYTES, MaterialUploads, part_count
from provisioning.backend import CloudError

COURSE = "c-42"


def test_part_counts():
    assert (part_count(0), part_count(1), part_count(PART_BYTES), part_count(PART_BYTES + 1)) == (1, 1, 1, 2)


def test_a_file_in_folders_goes_by_presigned_parts_resumes_then_is_renamed_and_deleted(backend):
    uploads = MaterialUploads(backend)
    uploads.allow_browser_uploads(["http://127.0.0.1:5000"])
    cors = backend.s3.get_bucket_cors(Bucket=backend.bucket)["CORSRules"][0]
    assert cors["AllowedMethods"] == ["PUT"] and "ETag" in cors["ExposeHeaders"]
    body = os.urandom(2 * PART_BYTES + 1234)  # three parts, the last one short
    started = uploads.start(COURSE, "datasets/week 1/train.csv", len(body))
    assert started.parts == 3 and started.key == f"courses/{COURSE}/materials/datasets/week 1/train.csv"

    def send(n: int) -> None:
        chunk = body[(n - 1) * PART_BYTES : n * PART_BYTES]
        answer = requests.put(uploads.part_url(started.key, started.upload_id, n), data=chunk, timeout=60)
        assert answer.status_code == 200 and answer.headers["ETag"]

    send(1)  # then the connection drops
    with pytest.raises(CloudError, match=r"Parts \[2, 3\]"):
        uploads.complete(started.key, started.upload_id, started.parts)
    assert list(uploads.stored_parts(started.key, started.upload_id)) == [1]  # what a resumed upload skips
    for n in (2, 3):
        send(n)
    uploads.complete(started.key, started.upload_id, started.parts)
    assert dict(backend.list_materials(COURSE)) == {"datasets/week 1/train.csv": len(body)}
    stored = backend.s3.get_object(Bucket=backend.bucket, Key=started.key)["Body"].read()
    assert stored == body

    uploads.rename(COURSE, "datasets/week 1/train.csv", "datasets/week 1/train-v2.csv")
    assert dict(backend.list_materials(COURSE)) == {"datasets/week 1/train-v2.csv": len(body)}
    uploads.delete(COURSE, "datasets/week 1/train-v2.csv")
    assert backend.list_materials(COURSE) == []


def test_an_unknown_upload_maps_to_the_ports_error(backend):
    uploads = MaterialUploads(backend)
    with pytest.raises(CloudError, match="could not list the parts uploaded"):
        uploads.stored_parts(f"courses/{COURSE}/materials/x.csv", "no-such-upload")
