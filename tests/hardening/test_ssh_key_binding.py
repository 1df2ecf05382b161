"""Issue 13: a public key's fingerprint stays bound to the first person who registered it, even after revoking."""

from __future__ import annotations

from sqlalchemy import select

from classroom.models import SshKey
from provisioning.ssh_keys import generate_key_pair
from tests.conftest import count_rows
from tests.support.lti import hidden_fields, launch, tool_token


def _keys_page(client, canvas, n):  # type: ignore[no-untyped-def]
    token = tool_token(launch(client, canvas, canvas.user("student", n)))
    return client.get("/app/keys", query_string={"t": token}).get_data(as_text=True)


def test_a_revoked_key_cannot_be_taken_over_by_another_student(client, canvas, session, engine):
    _private, public = generate_key_pair("david@laptop")
    david_page = _keys_page(client, canvas, 2)
    assert client.post("/app/keys/upload", data={**hidden_fields(david_page), "public_key": public}).status_code == 303
    key = session.scalar(select(SshKey))
    assert key is not None
    assert client.post(f"/app/keys/{key.id}/revoke", data=hidden_fields(david_page)).status_code == 303

    emily_page = _keys_page(client, canvas, 1)
    refused = client.post("/app/keys/upload", data={**hidden_fields(emily_page), "public_key": public})
    assert refused.status_code == 400
    text = refused.get_data(as_text=True)
    assert "registered to another person" in text
    assert "student2@" not in text and "student-2" not in text  # never says whose key it is
    assert count_rows(engine, "ssh_keys") == 1
    assert count_rows(engine, "ssh_key_fingerprints") == 1

    # the first owner may register it again
    again = client.post("/app/keys/upload", data={**hidden_fields(david_page), "public_key": public})
    assert again.status_code == 303
    assert count_rows(engine, "ssh_keys") == 2
