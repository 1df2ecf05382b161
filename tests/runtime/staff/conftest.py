"""Fixtures for the staff-tool tests: the app reads the runtime's homes from its data folder
(tests/runtime/conftest.py's `data_dir`), as in `make run`."""

from __future__ import annotations

import pytest


@pytest.fixture
def app(settings, backend, data_dir):  # type: ignore[no-untyped-def]
    from lti_app import create_app

    endpoint, prefix = backend.ec2.meta.endpoint_url, backend.image_parameter_prefix
    application = create_app(settings.with_(aws_endpoint_url=endpoint, aws_bucket=backend.bucket,
                                            image_parameter_prefix=prefix, data_dir=data_dir))  # fmt: skip
    yield application
    application.extensions["cwc"].engine.dispose()
