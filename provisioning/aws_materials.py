"""Course materials straight from the browser to S3: presigned multipart uploads, so the web workers never carry
the bytes; resumable (the parts already stored are listed), and delete and rename. Every AWS error maps to
CloudError. The views that hand these URLs to the browser are not written yet (issue 15, item 3)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from provisioning.aws_failures import AWS_FAILURES
from provisioning.backend import MANAGED_BY, CloudError

if TYPE_CHECKING:
    from provisioning.aws import AwsBackend

PART_BYTES = 16 * 1024 * 1024  # S3 wants 5 MiB..5 GiB a part (the last may be smaller), at most 10,000 parts
MAX_PARTS = 10_000
URL_SECONDS = 3600


@dataclass(frozen=True)
class StartedUpload:
    """One multipart upload: the key, S3's upload id and how many parts the browser sends."""

    key: str
    upload_id: str
    parts: int


@contextmanager
def _mapped(action: str) -> Iterator[None]:
    try:
        yield
    except AWS_FAILURES as exc:
        code = exc.response.get("Error", {}).get("Code", "?") if isinstance(exc, ClientError) else type(exc).__name__
        raise CloudError(f"The materials storage could not {action} ({code}); try again.") from exc


def material_key(course_key: str, path: str) -> str:
    """The S3 key of a course material (the path is already cleaned by classroom.materials)."""
    return f"courses/{course_key}/materials/{path.lstrip('/')}"


def part_count(size: int) -> int:
    """How many parts of PART_BYTES a file of `size` bytes takes (at least one)."""
    return max(1, -(-size // PART_BYTES))


class MaterialUploads:
    """Presigned multipart uploads, listing, delete and rename on the backend's bucket."""

    def __init__(self, backend: AwsBackend) -> None:
        self.s3 = backend.s3
        self.bucket = backend.bucket

    def allow_browser_uploads(self, origins: list[str]) -> None:
        """Let the tool's pages PUT parts from the browser (CORS), exposing the ETag the completion needs."""
        rule = {"AllowedOrigins": origins, "AllowedMethods": ["PUT"], "AllowedHeaders": ["*"],
                "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 3600}  # fmt: skip
        with _mapped("allow browser uploads"):
            self.s3.put_bucket_cors(Bucket=self.bucket, CORSConfiguration={"CORSRules": [rule]})

    def start(self, course_key: str, path: str, size: int) -> StartedUpload:
        """Begin the upload of one file of `size` bytes."""
        parts = part_count(size)
        if parts > MAX_PARTS:
            raise CloudError("This file is too large for one upload (S3 takes at most 10,000 parts).")
        key = material_key(course_key, path)
        with _mapped("start the upload"):
            answer = self.s3.create_multipart_upload(
                Bucket=self.bucket, Key=key, ServerSideEncryption="AES256",
                Tagging=f"cwc:managed-by={MANAGED_BY}&cwc:course={course_key}",
            )  # fmt: skip
        return StartedUpload(key, answer["UploadId"], parts)

    def part_url(self, key: str, upload_id: str, part_number: int) -> str:
        """A URL the browser PUTs one part to, valid for an hour."""
        with _mapped("sign the upload"):
            return str(
                self.s3.generate_presigned_url(
                    "upload_part",
                    Params={"Bucket": self.bucket, "Key": key, "UploadId": upload_id, "PartNumber": part_number},
                    ExpiresIn=URL_SECONDS,
                )
            )

    def stored_parts(self, key: str, upload_id: str) -> dict[int, str]:
        """Part number -> ETag of the parts S3 has (a resumed upload sends only the others)."""
        found: dict[int, str] = {}
        with _mapped("list the parts uploaded"):
            pages = self.s3.get_paginator("list_parts").paginate(Bucket=self.bucket, Key=key, UploadId=upload_id)
            for page in pages:
                found.update({int(p["PartNumber"]): str(p["ETag"]) for p in page.get("Parts", [])})
        return found

    def complete(self, key: str, upload_id: str, parts: int) -> None:
        """Assemble the parts (all of them must be stored); the file then appears in the materials."""
        stored = self.stored_parts(key, upload_id)
        missing = [n for n in range(1, parts + 1) if n not in stored]
        if missing:
            raise CloudError(f"Parts {missing[:5]} of the file have not arrived; resume the upload.")
        listing = [{"PartNumber": n, "ETag": stored[n]} for n in range(1, parts + 1)]
        with _mapped("complete the upload"):
            self.s3.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": listing}
            )

    def abort(self, key: str, upload_id: str) -> None:
        """Give up an upload (its stored parts stop costing)."""
        with _mapped("cancel the upload"):
            self.s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)

    def delete(self, course_key: str, path: str) -> None:
        """Remove one material."""
        with _mapped("delete the file"):
            self.s3.delete_object(Bucket=self.bucket, Key=material_key(course_key, path))

    def rename(self, course_key: str, old: str, new: str) -> None:
        """Move one material to a new path (copy, then delete the old key); never over an existing file."""
        source, target = material_key(course_key, old), material_key(course_key, new)
        with _mapped("rename the file"):
            self.s3.copy_object(
                Bucket=self.bucket, Key=target, CopySource={"Bucket": self.bucket, "Key": source},
                ServerSideEncryption="AES256", IfNoneMatch="*",
            )  # fmt: skip
            self.s3.delete_object(Bucket=self.bucket, Key=source)


class MaterialsMixin:
    """AwsBackend's part of the port for materials beyond upload and list: browser uploads, fetching one file."""

    s3: Any
    bucket: str

    def list_materials(self, course_key: str) -> list[tuple[str, int]]:
        """(path, size) of every material of the course."""
        prefix = f"courses/{course_key}/materials/"
        out: list[tuple[str, int]] = []
        with _mapped("list the materials"):
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                out += [(o["Key"][len(prefix) :], int(o["Size"])) for o in page.get("Contents", [])]
        return out

    def material_uploads(self) -> MaterialUploads:
        """Presigned multipart uploads, delete and rename on the materials bucket."""
        return MaterialUploads(self)  # type: ignore[arg-type]

    def download_material(self, course_key: str, path: str, dest: Path) -> None:
        """Write one material to `dest` (the caller renames it into place)."""
        with _mapped("download a material"):
            self.s3.download_file(self.bucket, material_key(course_key, path), str(dest))
