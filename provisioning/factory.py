"""Build the cloud backend from settings (never at import)."""

from __future__ import annotations

import boto3
from redis import Redis

from config.settings import Settings
from provisioning.aws import AwsBackend
from provisioning.ratelimit import RedisRateLimiter


def backend_from_settings(settings: Settings, redis: Redis | None = None) -> AwsBackend:
    """The AWS adapter for this deployment's region (moto's endpoint in development)."""
    limiter = RedisRateLimiter(redis, settings.aws_mutating_calls_per_s) if redis is not None else None
    return AwsBackend(
        boto3.Session(),
        region=settings.aws_region,
        bucket=settings.aws_bucket,
        instance_profile=settings.aws_instance_profile,
        endpoint_url=settings.aws_endpoint_url,
        limiter=limiter,
        image_parameter_prefix=settings.image_parameter_prefix,
    )
