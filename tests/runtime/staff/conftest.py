"""Fixtures for the staff-tool tests: the app reads the runtime's homes from its data folder, as in `make run`."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """The app's data folder; the runtime lives in <data_dir>/runtime as in `make run`."""
    top = Path(tempfile.mkdtemp(prefix="cwc-staff-", dir="/tmp"))
    top.chmod(0o711)
    yield top
    shutil.rmtree(top, ignore_errors=True)


@pytest.fixture
def runtime_root(data_dir: Path) -> Path:
    root = data_dir / "runtime"
    root.mkdir(mode=0o711)
    root.chmod(0o711)
    return root


@pytest.fixture
def app(settings, backend, data_dir):  # type: ignore[no-untyped-def]
    from lti_app import create_app

    endpoint, prefix = backend.ec2.meta.endpoint_url, backend.image_parameter_prefix
    application = create_app(settings.with_(aws_endpoint_url=endpoint, aws_bucket=backend.bucket,
                                            image_parameter_prefix=prefix, data_dir=data_dir))  # fmt: skip
    yield application
    application.extensions["cwc"].engine.dispose()
