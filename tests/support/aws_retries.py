"""botocore's retries on a test client, really made and counted, without the wall-clock waits.

AwsBackend runs botocore's "adaptive" retry mode. A throttled call is retried after an exponential backoff (the
endpoint sleeps rand * 2**i seconds), and from the first throttle on, the client's token bucket holds every later
call on that client to the rate botocore's CUBIC calculator allows (down to 0.5 calls a second). Against moto with
an injected RequestLimitExceeded that was about 20 s of sleeping in three tests.

`instant_retries(client)` keeps botocore's own RetryHandler and ClientRateLimiter on the client and gives them a
virtual clock: a backoff or a token-bucket wait moves that clock forward by the time botocore asked to wait and
returns at once (the backoffs are recorded, for the tests that count retries). Which errors are retried, how
often, the retry quota, the backoff botocore computes and the rate adjustments stay botocore's; only the sleeping
is gone.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from botocore.retries.adaptive import ClientRateLimiter
from botocore.retries.standard import RetryHandler


@dataclass
class RetryClock:
    """Virtual time for one client's retries: real time plus every wait skipped so far."""

    backoffs: list[float] = field(default_factory=list)  # delays botocore chose before each retry, in order
    skipped: float = 0.0

    def current_time(self) -> float:
        return time.time() + self.skipped

    def sleep(self, amount: float) -> None:
        self.skipped += amount


class _Backoff:
    """botocore's backoff, computed as usual, recorded and added to the clock instead of slept."""

    def __init__(self, real: Any, clock: RetryClock) -> None:
        self.real, self.clock = real, clock

    def delay_amount(self, context: Any) -> float:
        delay = float(self.real.delay_amount(context))
        self.clock.backoffs.append(delay)
        self.clock.sleep(delay)
        return 0.0  # the endpoint sleeps this, then retries


class _BucketCondition(threading.Condition):
    """The token bucket's condition: a timed wait moves the clock on instead of blocking."""

    def __init__(self, lock: Any, clock: RetryClock) -> None:
        super().__init__(lock)
        self.clock = clock

    def wait(self, timeout: float | None = None) -> bool:
        assert timeout is not None, "botocore's token bucket always waits with a timeout"
        self.clock.sleep(timeout)
        return False


def _handler_of(client: Any, event: str, kind: type) -> Any:
    """The one handler object of `kind` that botocore registered on the client for `event`."""
    emitter = client.meta.events._emitter  # EventAliaser -> HierarchicalEmitter
    owners = [getattr(h, "__self__", None) for h in emitter._handlers.prefix_search(event)]
    found = [owner for owner in owners if isinstance(owner, kind)]
    assert len(found) == 1, f"expected one botocore {kind.__name__} on {event}, found {len(found)}"
    return found[0]


def instant_retries(client: Any) -> RetryClock:
    """Make the client's botocore retries and adaptive rate limit wait on a virtual clock; return that clock."""
    clock = RetryClock()
    service = client.meta.service_model.service_id.hyphenize()
    handler: RetryHandler = _handler_of(client, f"needs-retry.{service}", RetryHandler)
    policy = handler._retry_policy
    _replace(policy, "_retry_backoff", _Backoff(policy._retry_backoff, clock))
    limiter: ClientRateLimiter = _handler_of(client, f"before-send.{service}", ClientRateLimiter)
    bucket = limiter._token_bucket
    for owner in (limiter, limiter._rate_clocker, bucket):
        _replace(owner, "_clock", clock)
    _replace(bucket, "_new_fill_rate_condition", _BucketCondition(bucket._lock, clock))
    return clock


def _replace(owner: Any, name: str, value: Any) -> None:
    """Set botocore's private attribute, failing if a botocore release renamed it (the tests would sleep again)."""
    assert hasattr(owner, name), f"botocore's {type(owner).__name__} has no {name} any more"
    setattr(owner, name, value)
