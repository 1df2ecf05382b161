"""AwsBackend's boto3 clients, each made on first use.

Making a botocore client costs about 13 ms of CPU (its event hooks are copied, its exceptions built), and the
backend has six (EC2, EFS, SSM, S3, IAM, CloudWatch). A backend is built per web request that reaches AWS and per
job context, and most use one or two of them: each client is now made when first read, under the backend's lock
(a boto3 session is not thread-safe), then kept on the instance, where later reads find it directly.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config


class ClientFactory:
    """What a backend needs to make its clients: the session, their config and the endpoint (moto's, or AWS's)."""

    def __init__(self, session: boto3.Session, config: Config, endpoint_url: str | None) -> None:
        self.session, self.config, self.endpoint_url = session, config, endpoint_url
        self.lock = threading.Lock()

    def make(self, service: str) -> Any:
        return self.session.client(service, config=self.config, endpoint_url=self.endpoint_url)  # type: ignore[call-overload]


class LazyClient:
    """A backend attribute holding the boto3 client of the service it is named after, made on first read.

    A non-data descriptor: once made, the client sits in the instance's __dict__ and shadows this; assigning the
    attribute (a test's fault injection) replaces it as with a plain attribute."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.service = name

    def __get__(self, backend: Any, owner: type | None = None) -> Any:
        if backend is None:
            return self
        factory: ClientFactory = backend._clients
        with factory.lock:
            client = backend.__dict__.get(self.service)
            if client is None:
                client = factory.make(self.service)
                backend.__dict__[self.service] = client
        return client
