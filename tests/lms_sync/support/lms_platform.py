"""A real LTI Advantage platform over HTTP for LMS-sync tests: OAuth2 token endpoint (JWT client assertion checked
with the tool's public key), NRPS with paging and a differences link, AGS line items and scores, fault injection.

Everything it receives is recorded so tests can assert exactly what arrived and when.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import jwt
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from tests.support.serving import serve_in_thread

LIS = "http://purl.imsglobal.org/vocab/lis/v2/"
ROLE = {
    "instructor": [LIS + "membership#Instructor"],
    "ta": [LIS + "membership/Instructor#TeachingAssistant", LIS + "membership#Instructor"],
    "student": [LIS + "membership#Learner"],
    "observer": [LIS + "membership#Mentor"],
}
NRPS_MEDIA = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"


@dataclass
class Fault:
    """A scripted answer: returned instead of the real one for the next matching call."""

    status: int
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Arrival:
    """One score POST as it arrived."""

    at: float
    line_item: int
    query: str
    body: dict[str, Any]
    status: int


@dataclass
class LmsPlatform:
    """State and HTTP server; `serve()` starts it on 127.0.0.1."""

    issuer: str = "https://canvas.instructure.com"
    client_id: str = "10000000000042"
    deployment_id: str = "1:deploy-cs229"
    context_id: str = "cs229-fall2024"
    tool_public_pem: str = ""
    token_ttl_s: int = 3600
    offer_differences: bool = True
    base_url: str = ""
    members: dict[str, dict[str, Any]] = field(default_factory=dict)
    version: int = 0
    changes: list[tuple[int, str]] = field(default_factory=list)  # (version, user_id)
    line_items: dict[int, dict[str, Any]] = field(default_factory=dict)
    scores: list[Arrival] = field(default_factory=list)
    faults: dict[str, deque[Fault]] = field(default_factory=dict)
    tokens: dict[str, float] = field(default_factory=dict)  # token -> expiry
    token_requests: int = 0
    requests_log: list[tuple[str, str]] = field(default_factory=list)  # (method, path?query)
    seen_jti: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: Any = None

    # --- roster ------------------------------------------------------------------------------------
    def add(
        self, user_id: str, role: str = "student", *, name: str = "", email: str = "", status: str = "Active"
    ) -> None:
        """Add or change a member (recorded as a change for the differences link)."""
        given, _, family = (name or f"Student {user_id}").partition(" ")
        self.members[user_id] = {
            "user_id": user_id,
            "status": status,
            "roles": ROLE.get(role, [role]),
            "name": name or f"Student {user_id}",
            "given_name": given,
            "family_name": family,
            "email": email or f"{user_id}@university.edu",
        }
        self._changed(user_id)

    def set_role(self, user_id: str, role: str) -> None:
        self.members[user_id]["roles"] = ROLE[role]
        self._changed(user_id)

    def set_status(self, user_id: str, status: str) -> None:
        self.members[user_id]["status"] = status
        self._changed(user_id)

    def remove(self, user_id: str) -> None:
        """Gone from the roster (the differences link reports it as Deleted)."""
        self.members.pop(user_id)
        self._changed(user_id)

    def _changed(self, user_id: str) -> None:
        self.version += 1
        self.changes.append((self.version, user_id))

    @property
    def nrps_url(self) -> str:
        return f"{self.base_url}/api/lti/courses/{self.context_id}/names_and_roles"

    @property
    def lineitems_url(self) -> str:
        return f"{self.base_url}/api/lti/courses/{self.context_id}/line_items"

    def line_item_url(self, item_id: int) -> str:
        query = self.line_items[item_id].get("query", "")
        return f"{self.lineitems_url}/{item_id}" + (f"?{query}" if query else "")

    def add_line_item(
        self,
        label: str,
        maximum: float = 100,
        *,
        end: str | None = None,
        query: str = "",
        tag: str = "",
        resource_link_id: str = "",
    ) -> int:
        item_id = len(self.line_items) + 1
        self.line_items[item_id] = {
            "label": label,
            "scoreMaximum": maximum,
            "endDateTime": end,
            "query": query,
            "tag": tag,
            "resourceLinkId": resource_link_id,
        }
        return item_id

    def inject(self, kind: str, *faults: Fault) -> None:
        """Answer the next calls of a kind ("score", "nrps", "token", "lineitems") with these faults."""
        self.faults.setdefault(kind, deque()).extend(faults)

    # --- HTTP --------------------------------------------------------------------------------------
    def _fault(self, kind: str) -> Response | None:
        with self._lock:
            queue = self.faults.get(kind)
            fault = queue.popleft() if queue else None
        if fault is None:
            return None
        return Response(fault.body, status=fault.status, headers=fault.headers, content_type="application/json")

    def _token(self, request: Request) -> Response:
        self.token_requests += 1
        fault = self._fault("token")
        if fault is not None:
            return fault
        form = request.form
        try:
            claims = jwt.decode(
                form.get("client_assertion", ""),
                self.tool_public_pem,
                algorithms=["RS256"],
                audience=f"{self.base_url}/token",
            )
        except jwt.PyJWTError as exc:
            return Response(
                json.dumps({"error": "invalid_client", "error_description": str(exc)}),
                status=401,
                content_type="application/json",
            )
        if claims.get("iss") != self.client_id or claims.get("sub") != self.client_id or claims["jti"] in self.seen_jti:
            return Response(json.dumps({"error": "invalid_client"}), status=401, content_type="application/json")
        self.seen_jti.add(claims["jti"])
        token = secrets.token_urlsafe(16)
        self.tokens[token] = time.time() + self.token_ttl_s
        return Response(
            json.dumps(
                {
                    "access_token": token,
                    "token_type": "Bearer",
                    "expires_in": self.token_ttl_s,
                    "scope": form.get("scope", ""),
                }
            ),
            content_type="application/json",
        )

    def expire_tokens(self) -> None:
        """Make every issued token invalid (as if the platform revoked or expired them early)."""
        self.tokens.clear()

    def _authorised(self, request: Request) -> bool:
        header = request.headers.get("Authorization", "")
        token = header[7:] if header.startswith("Bearer ") else ""
        return self.tokens.get(token, 0) > time.time()

    def _members_page(self, request: Request) -> Response:
        fault = self._fault("nrps")
        if fault is not None:
            return fault
        args = request.args
        if "since" in args:
            since = int(args["since"])
            changed = dict.fromkeys(uid for v, uid in self.changes if v > since)
            members = [self.members.get(uid) or {"user_id": uid, "status": "Deleted", "roles": []} for uid in changed]
        else:
            members = list(self.members.values())
        limit = int(args.get("limit") or 1000)
        page = int(args.get("page") or 1)
        chunk = members[(page - 1) * limit : page * limit]
        body = {"id": self.nrps_url, "context": {"id": self.context_id, "title": "CS 229"}, "members": chunk}
        links = []
        if page * limit < len(members):
            params = {k: v for k, v in args.items() if k != "page"}
            params.update(page=str(page + 1), limit=str(limit))
            links.append(f'<{self.nrps_url}?{urlencode(params)}>; rel="next"')
        elif self.offer_differences:
            links.append(f'<{self.nrps_url}?{urlencode({"since": self.version})}>; rel="differences"')
        response = Response(json.dumps(body), content_type=NRPS_MEDIA)
        if links:
            response.headers["Link"] = ", ".join(links)
        return response

    def _line_items(self, request: Request, item_id: int | None) -> Response:
        if request.method == "POST" and item_id is None:
            body = request.get_json(force=True)
            new_id = self.add_line_item(body["label"], body["scoreMaximum"], tag=body.get("tag", ""))
            return Response(json.dumps(self._item_json(new_id)), status=201, content_type="application/json")
        fault = self._fault("lineitems")
        if fault is not None:
            return fault
        return Response(json.dumps([self._item_json(i) for i in self.line_items]), content_type="application/json")

    def _item_json(self, item_id: int) -> dict[str, Any]:
        item = self.line_items[item_id]
        body = {"id": self.line_item_url(item_id), "label": item["label"], "scoreMaximum": item["scoreMaximum"]}
        for key in ("endDateTime", "tag", "resourceLinkId"):
            if item.get(key):
                body[key] = item[key]
        return body

    def _score(self, request: Request, item_id: int) -> Response:
        body = request.get_json(force=True)
        fault = self._fault("score")
        status = fault.status if fault is not None else 200
        if fault is None:
            member = self.members.get(body.get("userId", ""))
            if member is None or member["status"] != "Active":
                fault = Response(
                    json.dumps({"errors": [{"message": "User not found in course or is not a student"}]}),
                    status=422,
                    content_type="application/json",
                )
                status = 422
        with self._lock:
            self.scores.append(Arrival(time.monotonic(), item_id, request.query_string.decode(), body, status))
        return fault if fault is not None else Response(json.dumps({}), content_type="application/json")

    def accepted(self) -> list[Arrival]:
        """Score posts the platform accepted."""
        return [a for a in self.scores if a.status == 200]

    def _app(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        path = request.path
        with self._lock:
            self.requests_log.append((request.method, request.full_path.rstrip("?")))
        prefix = f"/api/lti/courses/{self.context_id}"
        if path == "/token" and request.method == "POST":
            response = self._token(request)
        elif not path.startswith(prefix):
            response = Response("not found", status=404)
        elif not self._authorised(request):
            response = Response(
                json.dumps({"errors": [{"message": "Invalid access token."}]}),
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="canvas-lms"'},
                content_type="application/json",
            )
        elif path == prefix + "/names_and_roles":
            response = self._members_page(request)
        elif path == prefix + "/line_items":
            response = self._line_items(request, None)
        elif path.startswith(prefix + "/line_items/") and path.endswith("/scores") and request.method == "POST":
            response = self._score(request, int(path.split("/")[-2]))
        else:
            response = Response("not found", status=404)
        return response(environ, start_response)

    def serve(self) -> LmsPlatform:
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.base_url = f"http://127.0.0.1:{self._server.server_port}"
        if self.issuer.startswith("http://127.0.0.1"):
            self.issuer = self.base_url
        serve_in_thread(self._server)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def differences_requests(self) -> list[str]:
        return [p for m, p in self.requests_log if "since=" in p]


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}
