"""The LTI Advantage adapter: pylti1p3's NRPS/AGS services over a connector with Redis-cached tokens and retries.

pylti1p3 leaves three gaps this closes: service tokens are cached per (issuer, client_id, scopes) in Redis
(not per process), calls are retried as `lms_sync.http` decides, and paging uses a real Link parser (several
rels in one header, URL case kept) that also keeps NRPS's `differences` link.

Longer than 300 lines because the connector (token cache, retries, paging) and the adapter built on it are one
LTI Advantage client, read together.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

import requests
from pylti1p3.assignments_grades import AssignmentsGradesService
from pylti1p3.exception import LtiServiceException
from pylti1p3.grade import Grade
from pylti1p3.lineitem import LineItem
from pylti1p3.names_roles import NamesRolesProvisioningService
from pylti1p3.registration import Registration
from pylti1p3.service_connector import ServiceConnector

from classroom.models import Platform
from classroom.services.keys import SigningKey
from lms_sync.deadlines import parse_when
from lms_sync.http import (
    LmsError,
    RetryPolicy,
    Verdict,
    classify,
    network_verdict,
    parse_link_header,
    send_with_retries,
)
from lms_sync.ports import RemoteLineItem, RemoteMember, RosterPage, ScoreBody
from lms_sync.tokens import MARGIN_S, RedisTokenCache, token_key

NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
AGS = "https://purl.imsglobal.org/spec/lti-ags/scope/"
AGS_SCOPES = (AGS + "lineitem", AGS + "lineitem.readonly", AGS + "result.readonly", AGS + "score")
NRPS_MEDIA = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
SCORE_MEDIA = "application/vnd.ims.lis.v1.score+json"
CANVAS_SUBMISSION = "https://canvas.instructure.com/lti/submission"
CANVAS_ISSUER = "https://canvas.instructure.com"
USER_AGENT = "CloudWorkstationClassroom/1.0 (LTI 1.3 tool)"
LOCAL_TOKEN_S = 60.0  # how long one job trusts its copy of a cached token before asking Redis again


class ServiceRegistration(Registration):
    """The platform's registration as pylti1p3 needs it for service calls (signs with our current key)."""

    def __init__(self, platform: Platform, key: SigningKey) -> None:
        self._kid = key.kid
        (
            self.set_issuer(platform.issuer)
            .set_client_id(platform.client_id)
            .set_auth_login_url(platform.auth_login_url)
            .set_auth_token_url(platform.auth_token_url)
            .set_key_set_url(platform.key_set_url)
            .set_tool_private_key(key.private_pem)
        )
        if platform.auth_audience:
            self.set_auth_audience(platform.auth_audience)

    def get_kid(self) -> str:
        return self._kid


class TimeoutSession(requests.Session):
    """A requests session whose every call has a timeout (pylti1p3 sets none)."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout
        self.headers["User-Agent"] = USER_AGENT

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", self.timeout)
        return super().request(method, url, *args, **kwargs)


class CachingConnector(ServiceConnector):
    """pylti1p3's ServiceConnector with Redis token caching, one token fetch at a time, and retries."""

    def __init__(
        self,
        registration: Registration,
        cache: RedisTokenCache,
        *,
        http: requests.Session,
        policy: RetryPolicy,
        sleep: Callable[[float], None],
    ) -> None:
        super().__init__(registration, http)
        self._cache, self._policy, self._sleep = cache, policy, sleep
        self._lock = threading.Lock()
        self._local: dict[str, tuple[str, float]] = {}  # this job's copy of Redis's tokens: no Redis call per post
        # Tokens the platform refused in this job. A thread that read a token from Redis just before another thread
        # dropped it must not put it back in `_local`: a post would then spend its one retry on a dead token.
        self._refused: set[str] = set()
        self.token_fetches = 0

    def _scope_key(self, scopes: Iterable[str]) -> str:
        return token_key(self._registration.get_issuer() or "", self._registration.get_client_id() or "", scopes)

    def _get_cached_access_token(self, scope_key: str) -> str | None:
        token, ttl = self._cache.get_with_ttl(scope_key)
        if not token or token in self._refused:
            return None
        self._local[scope_key] = (token, time.monotonic() + min(ttl, LOCAL_TOKEN_S))
        return token

    def _cache_access_token(self, scope_key: str, access_token: str, expires_in: float) -> None:
        self.token_fetches += 1
        self._cache.put(scope_key, access_token, expires_in)
        lifetime = min(float(expires_in or 0) - MARGIN_S, LOCAL_TOKEN_S)
        if lifetime > 0:
            self._local[scope_key] = (access_token, time.monotonic() + lifetime)

    def get_access_token(self, scopes: Sequence[str]) -> str:
        key = self._scope_key(sorted(scopes))
        token = self._local_token(key)
        if token:
            return token
        with self._lock:  # threads of one job share one fetch; other processes share it through Redis
            return self._local_token(key) or super().get_access_token(scopes)

    def _local_token(self, key: str) -> str:
        token, until = self._local.get(key, ("", 0.0))
        return token if token and until > time.monotonic() and token not in self._refused else ""

    def drop_token(self, scopes: Sequence[str], token: str) -> None:
        """Forget a refused token here and in Redis (unless another worker already replaced it)."""
        key = self._scope_key(sorted(scopes))
        with self._lock:
            self._refused.add(token)
            if self._local.get(key, ("", 0.0))[0] == token:
                self._local.pop(key, None)
        self._cache.drop(key, token)

    def send(
        self,
        scopes: Sequence[str],
        method: str,
        url: str,
        *,
        data: str | None = None,
        content_type: str = "",
        accept: str = "application/json",
    ) -> requests.Response:
        """One request with the cached token; a refused token is dropped and replaced once."""
        response: requests.Response | None = None
        for first_try in (True, False):
            try:
                token = self.get_access_token(scopes)
            except LtiServiceException as exc:  # the token endpoint's own answer decides (5xx/429 are retried)
                return exc.response
            headers = {"Authorization": "Bearer " + token, "Accept": accept}
            if content_type:
                headers["Content-Type"] = content_type
            response = self._requests_session.request(method, url, data=data, headers=headers)
            if response.status_code != 401 or not first_try:
                return response
            self.drop_token(scopes, token)
        assert response is not None
        return response

    def make_service_request(  # type: ignore[override]
        self,
        scopes: Sequence[str],
        url: str,
        *,
        is_post: bool = False,
        data: str | None = None,
        content_type: str = "application/json",
        accept: str = "application/json",
        case_insensitive_headers: bool = False,
    ) -> dict[str, Any]:
        method = "POST" if is_post else "GET"
        response = send_with_retries(
            lambda: self.send(
                scopes,
                method,
                url,
                data=data if is_post else None,
                content_type=content_type if is_post else "",
                accept=accept,
            ),
            policy=self._policy,
            sleep=self._sleep,
        )
        links = parse_link_header(response.headers.get("Link", ""))
        return {
            "headers": response.headers if case_insensitive_headers else dict(response.headers),
            "body": response.json() if response.content else None,
            "next_page_url": links.get("next"),
            "links": links,
        }


def _member(data: dict[str, Any]) -> RemoteMember | None:
    user_id = data.get("user_id")
    if not isinstance(user_id, str) or not user_id:
        return None
    roles = tuple(r for r in data.get("roles") or () if isinstance(r, str))

    def text(key: str, limit: int = 255) -> str:
        value = data.get(key)
        return value.strip()[:limit] if isinstance(value, str) else ""

    status = text("status") or "Active"
    return RemoteMember(
        user_id[:255], roles, status, text("name"), text("given_name"), text("family_name"), text("email", 320)
    )


def _decimal(value: Any, default: str = "100") -> Decimal:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return Decimal(default)
    return number if number.is_finite() and number > 0 else Decimal(default)


def remote_line_item(data: dict[str, Any]) -> RemoteLineItem:
    """An AGS line item body as plain data."""
    return RemoteLineItem(
        url=str(data.get("id") or ""),
        label=str(data.get("label") or "")[:255],
        score_maximum=_decimal(data.get("scoreMaximum")),
        resource_link_id=str(data.get("resourceLinkId") or "")[:255],
        resource_id=str(data.get("resourceId") or "")[:255],
        tag=str(data.get("tag") or "")[:255],
        end_at=parse_when(data.get("endDateTime")),
    )


class LtiAdvantageAdapter:
    """LmsServices over LTI Advantage (NRPS and AGS), for one platform registration."""

    def __init__(self, connector: CachingConnector, *, scopes: Sequence[str], canvas: bool) -> None:
        self.connector, self.scopes, self.canvas = connector, list(scopes) or list(AGS_SCOPES), canvas

    def roster_page(self, url: str) -> RosterPage:
        """One membership page with its next and differences links."""
        nrps = NamesRolesProvisioningService(self.connector, {"context_memberships_url": url})
        data = nrps.get_nrps_data(url)
        body = data.get("body") or {}
        raw = body.get("members", []) if isinstance(body, dict) else []
        members = tuple(m for m in (_member(x) for x in raw if isinstance(x, dict)) if m is not None)
        links = data.get("links") or {}
        return RosterPage(members, links.get("next"), links.get("differences"))

    def _ags(self, lineitems_url: str) -> AssignmentsGradesService:
        return AssignmentsGradesService(self.connector, {"scope": self.scopes, "lineitems": lineitems_url})  # type: ignore[typeddict-item]

    def line_items(self, lineitems_url: str) -> list[RemoteLineItem]:
        """Every line item visible to the tool (all pages)."""
        return [remote_line_item(dict(item)) for item in self._ags(lineitems_url).get_lineitems()]

    def create_line_item(
        self, lineitems_url: str, *, label: str, score_maximum: Decimal, tag: str, resource_id: str
    ) -> RemoteLineItem:
        """Create a line item (POST to the container)."""
        item = LineItem().set_label(label).set_score_maximum(float(score_maximum)).set_tag(tag)
        if resource_id:
            item.set_resource_id(resource_id)
        try:
            created = self._ags(lineitems_url).create_lineitem(item)
        except LtiServiceException as exc:
            raise LmsError(str(exc), permanent=True) from exc
        return remote_line_item(json.loads(created.get_value()))

    def score_body(self, score: ScoreBody) -> str:
        """The score JSON (pylti1p3's Grade), with Canvas's flag that keeps one submission per student.

        Without a grade (a usage comment on an assignment graded in the LMS) the body has no scoreGiven and says
        grading is not ready: AGS platforms then keep the grade they hold (Canvas ignores scoreGiven unless the
        score is FullyGraded) and show the comment; Canvas is also told this is not a new submission.
        """
        grade = Grade().set_user_id(score.user_id).set_timestamp(score.timestamp.isoformat(timespec="milliseconds"))
        if score.score_given is None:
            grade.set_activity_progress("InProgress").set_grading_progress("NotReady")
        else:
            grade.set_score_given(float(score.score_given)).set_score_maximum(float(score.score_maximum))
            grade.set_activity_progress("Completed").set_grading_progress("FullyGraded")
        if score.comment:
            grade.set_comment(score.comment)
        if self.canvas and (score.is_update or score.score_given is None):
            grade.set_extra_claims({CANVAS_SUBMISSION: {"new_submission": False}})
        return grade.get_value()

    def post_score(self, line_item_url: str, score: ScoreBody, *, attempt: int) -> Verdict:
        """POST to `<line item>/scores`, query string kept; one try, the verdict says what next."""
        url = AssignmentsGradesService._add_url_path_ending(line_item_url, "scores")  # noqa: SLF001 - keeps ?query
        try:
            response = self.connector.send(
                self.scopes, "POST", url, data=self.score_body(score), content_type=SCORE_MEDIA
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            return network_verdict(exc, attempt=attempt, policy=self.connector._policy)  # noqa: SLF001
        return classify(
            response.status_code,
            response.headers,
            response.text,
            attempt=attempt,
            policy=self.connector._policy,  # noqa: SLF001
        )
