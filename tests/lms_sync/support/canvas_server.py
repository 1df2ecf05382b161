"""Recorded Canvas API responses served over HTTP, in canvasapi's own fixture shape
({name: {method, endpoint, data, status_code, headers}}), plus Canvas's OAuth2 token endpoint.

Access tokens expire or can be revoked; the token endpoint issues new ones on the authorization_code and
refresh_token grants (a refresh answer carries no new refresh token, as Canvas does)."""

from __future__ import annotations

import json
import secrets
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from tests.support.serving import serve_in_thread

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "canvas"
CLIENT_ID, CLIENT_SECRET = "170000000000042", "canvas-dev-key-secret"


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


@dataclass
class CanvasServer:
    base_url: str = ""
    valid_tokens: set[str] = field(default_factory=set)
    refresh_tokens: set[str] = field(default_factory=set)
    codes: set[str] = field(default_factory=lambda: {"good-code"})
    grants: list[str] = field(default_factory=list)
    api_calls: list[tuple[str, str]] = field(default_factory=list)
    faults: deque[str] = field(default_factory=deque)  # names from oauth.json answered before the next API call
    _server: Any = None

    def _fixture(self, entry: dict[str, Any], **values: str) -> Response:
        body = entry["data"]
        text = body if isinstance(body, str) else json.dumps(body)
        for key, value in values.items():
            text = text.replace("{" + key + "}", value)
        headers = {k: v.replace("{base}", self.base_url) for k, v in entry.get("headers", {}).items()}
        return Response(
            text,
            status=entry.get("status_code", 200),
            headers=headers,
            content_type="application/json" if not isinstance(body, str) else "text/plain",
        )

    def _token(self, request: Request) -> Response:
        form, oauth = request.form, load("oauth")
        self.grants.append(form.get("grant_type", ""))
        client_ok = (form.get("client_id") == CLIENT_ID and form.get("client_secret") == CLIENT_SECRET) or (
            request.authorization is not None
            and request.authorization.username == CLIENT_ID
            and request.authorization.password == CLIENT_SECRET
        )
        if not client_ok:
            return Response(json.dumps({"error": "invalid_client"}), status=401, content_type="application/json")
        access = "canvas-" + secrets.token_urlsafe(8)
        if form.get("grant_type") == "authorization_code" and form.get("code") in self.codes:
            self.codes.discard(form["code"])
            refresh = "refresh-" + secrets.token_urlsafe(8)
            self.valid_tokens.add(access)
            self.refresh_tokens.add(refresh)
            return self._fixture(oauth["authorization_code"], access_token=access, refresh_token=refresh)
        if form.get("grant_type") == "refresh_token" and form.get("refresh_token") in self.refresh_tokens:
            self.valid_tokens.add(access)
            return self._fixture(oauth["refresh_token"], access_token=access)
        return self._fixture(oauth["invalid_grant"])

    def _api(self, request: Request) -> Response:
        endpoint = request.path[len("/api/v1/") :]
        query = request.query_string.decode()
        self.api_calls.append((request.method, endpoint + ("?" + query if query else "")))
        header = request.headers.get("Authorization", "")
        if header[7:] not in self.valid_tokens:
            return self._fixture(load("oauth")["invalid_access_token"])
        if self.faults:
            return self._fixture(load("oauth")[self.faults.popleft()])
        entries = [e for e in load("course").values() if e["method"] == request.method]
        exact = [e for e in entries if e["endpoint"] == f"{endpoint}?{query}"]
        plain = [e for e in entries if e["endpoint"] == endpoint]
        match = (exact or plain or [None])[0]
        if match is None:
            return Response(
                json.dumps({"errors": [{"message": "The specified resource does not exist."}]}),
                status=404,
                content_type="application/json",
            )
        return self._fixture(match)

    def revoke_all(self) -> None:
        """Access tokens stop working (expired early or revoked); refresh tokens still work."""
        self.valid_tokens.clear()

    def _app(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        if request.path == "/login/oauth2/token" and request.method == "POST":
            response = self._token(request)
        elif request.path.startswith("/api/v1/"):
            response = self._api(request)
        else:
            response = Response("not found", status=404)
        return response(environ, start_response)

    def serve(self) -> CanvasServer:
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.base_url = f"http://127.0.0.1:{self._server.server_port}"
        serve_in_thread(self._server)
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
