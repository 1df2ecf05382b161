"""An answer that is not AWS's (an HTML 500 page from a proxy in front of the endpoint) maps to the port's
CloudError like any AWS failure, for EC2 and for S3: botocore raises ResponseParserError for it, which is neither
a ClientError nor a BotoCoreError. Real boto3 against the moto server; the page replaces moto's answer."""

from __future__ import annotations

import pytest
from botocore.awsrequest import AWSResponse
from botocore.parsers import ResponseParserError

from provisioning.backend import CloudError

PAGE = b"<!doctype html>\n<title>500 Internal Server Error</title>\n<h1>Internal Server Error</h1>\n"


class _Raw:
    def stream(self, **_: object):  # type: ignore[no-untyped-def]
        yield PAGE


def _html_500(request, **_: object) -> AWSResponse:  # type: ignore[no-untyped-def]
    return AWSResponse(request.url, 500, {"Content-Type": "text/html"}, _Raw())


def test_an_html_500_page_is_a_cloud_error_for_ec2_and_s3(backend):  # type: ignore[no-untyped-def]
    backend.ec2.meta.events.register_first("before-send.ec2.DescribeInstances", _html_500)
    with pytest.raises(ResponseParserError):  # what boto3 itself raises
        backend.ec2.describe_instances()
    with pytest.raises(CloudError) as ec2:
        backend.describe_managed()
    assert isinstance(ec2.value.__cause__, ResponseParserError)
    backend.s3.meta.events.register_first("before-send.s3.ListObjectsV2", _html_500)
    with pytest.raises(CloudError):
        backend.course_stored("course-1", "")
