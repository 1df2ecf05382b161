"""The app on the simulated AWS account the `backend` fixture made (moto), for tests that reach the cloud port."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from config.settings import Settings
from provisioning.aws import AwsBackend


def app_on_simulated_aws(settings: Settings, backend: AwsBackend, **extra: Any) -> Iterator[Any]:
    """`create_app` pointed at the backend's moto server, bucket and image parameters (plus `extra` settings); its
    engine disposed afterwards. Not in TESTING mode: errors answer as they would in production."""
    from lti_app import create_app

    application = create_app(
        settings.with_(
            aws_endpoint_url=backend.ec2.meta.endpoint_url,
            aws_bucket=backend.bucket,
            image_parameter_prefix=backend.image_parameter_prefix,
            **extra,
        )
    )
    yield application
    application.extensions["cwc"].engine.dispose()
