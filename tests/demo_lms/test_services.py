"""NRPS paging and AGS line items, scores and results, through real access tokens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask.testing import FlaskClient
from sqlalchemy.engine import Engine

from tests.demo_lms.support import AGS, ALL_SCOPES, ISSUER, FakeTool, count_rows

CTX = "/demo-lms/api/contexts/cs229-fall2024"
NRPS_TYPE = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"


def _auth(client: FlaskClient, tool: FakeTool, scopes: list[str] = ALL_SCOPES) -> dict[str, str]:
    resp = client.post(
        "/demo-lms/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion": tool.assertion(),
            "scope": " ".join(scopes),
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        },
    )
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return {"Authorization": "Bearer " + resp.get_json()["access_token"]}


def test_nrps_pages_with_link_next(client: FlaskClient, tool: FakeTool) -> None:
    client.get("/demo-lms/")  # the course exists once someone opened the Demo LMS
    headers = {**_auth(client, tool), "Accept": NRPS_TYPE}
    url, members, pages = f"{CTX}/memberships?limit=20", [], 0
    while url:
        resp = client.get(url, headers=headers)
        assert resp.status_code == 200 and resp.mimetype == NRPS_TYPE
        body = resp.get_json()
        assert body["context"]["id"] == "cs229-fall2024" and body["id"].startswith(ISSUER)
        members += body["members"]
        pages += 1
        link = resp.headers.get("Link", "")
        assert (link == "") == (len(body["members"]) < 20 or len(members) == 54)
        url = link[1:].split('>; rel="next"')[0].replace("http://localhost", "") if link else ""
    assert pages == 3 and len(members) == 54 and len({m["user_id"] for m in members}) == 54
    emily = next(m for m in members if m["email"] == "emily.chen@university.edu")
    assert emily == {
        "status": "Active",
        "name": "Emily Chen",
        "given_name": "Emily",
        "family_name": "Chen",
        "email": "emily.chen@university.edu",
        "user_id": emily["user_id"],
        "roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"],
    }
    learners = client.get(f"{CTX}/memberships?role=Learner", headers=headers).get_json()["members"]
    assert len(learners) == 50


def test_line_item_scores_and_results(client: FlaskClient, tool: FakeTool, engine: Engine) -> None:
    client.get("/demo-lms/")
    headers = _auth(client, tool)
    resp = client.post(
        f"{CTX}/lineitems",
        headers=headers,
        json={"label": "HW1: Linear regression", "scoreMaximum": 10, "resourceId": "hw1", "tag": "cloud-workstation"},
    )
    assert resp.status_code == 201, resp.get_data(as_text=True)
    item = resp.get_json()
    assert item["id"].startswith(ISSUER + "/api/contexts/cs229-fall2024/lineitems/")
    assert resp.headers["Location"] == item["id"] and item["scoreMaximum"] == 10
    path = item["id"].replace("http://localhost", "")
    listed = client.get(f"{CTX}/lineitems?tag=cloud-workstation", headers=headers).get_json()
    assert [i["id"] for i in listed] == [item["id"]]
    users = [m["user_id"] for m in client.get(f"{CTX}/memberships?role=Learner", headers=headers).get_json()["members"]]
    t0 = datetime(2024, 9, 3, 12, 0, tzinfo=UTC)
    for n, (user, given) in enumerate([(users[0], 5), (users[0], 8), (users[1], 20)]):
        score = {
            "userId": user,
            "scoreGiven": given,
            "scoreMaximum": 20 if given == 20 else 10,
            "activityProgress": "Completed",
            "gradingProgress": "FullyGraded",
            "timestamp": (t0 + timedelta(minutes=n)).isoformat(),
        }
        score_headers = {**headers, "Content-Type": "application/vnd.ims.lis.v1.score+json"}
        resp = client.post(f"{path}/scores", headers=score_headers, json=score)
        assert resp.status_code == 200, resp.get_data(as_text=True)
    assert count_rows(engine, "demo_scores") == 3, "every score is kept"
    results = {r["userId"]: r for r in client.get(f"{path}/results", headers=headers).get_json()}
    assert results[users[0]]["resultScore"] == 8 and results[users[0]]["resultMaximum"] == 10
    assert results[users[1]]["resultScore"] == 10, "20/20 is scaled to the line item's 10"
    only = client.get(f"{path}/results?user_id={users[1]}", headers=headers).get_json()
    assert [r["userId"] for r in only] == [users[1]]
    older = {
        "userId": users[0],
        "scoreGiven": 1,
        "scoreMaximum": 10,
        "activityProgress": "Completed",
        "gradingProgress": "FullyGraded",
        "timestamp": t0.isoformat(),
    }
    assert client.post(f"{path}/scores", headers=headers, json=older).status_code == 409
    assert client.post(f"{path}/scores", headers=headers, json={**older, "userId": "nobody"}).status_code == 422
    assert client.post(f"{path}/scores", headers=headers, json={**older, "gradingProgress": "Done"}).status_code == 400
    assert count_rows(engine, "demo_scores") == 3


def test_line_item_update_delete_and_validation(client: FlaskClient, tool: FakeTool, engine: Engine) -> None:
    client.get("/demo-lms/")
    headers = _auth(client, tool)
    assert client.post(f"{CTX}/lineitems", headers=headers, json={"label": "x", "scoreMaximum": 0}).status_code == 400
    assert client.post(f"{CTX}/lineitems", headers=headers, json={"scoreMaximum": 5}).status_code == 400
    assert count_rows(engine, "demo_line_items") == 0
    path = (
        client.post(f"{CTX}/lineitems", headers=headers, json={"label": "Project", "scoreMaximum": 100})
        .get_json()["id"]
        .replace("http://localhost", "")
    )
    resp = client.put(path, headers=headers, json={"label": "Final project", "scoreMaximum": 50})
    assert resp.status_code == 200 and resp.get_json()["label"] == "Final project"
    assert client.get(path, headers=headers).get_json()["scoreMaximum"] == 50
    read_only = _auth(client, tool, [AGS + "lineitem.readonly"])
    assert client.get(path, headers=read_only).status_code == 200
    assert client.delete(path, headers=read_only).status_code == 403
    assert client.delete(path, headers=headers).status_code == 204
    assert client.get(path, headers=headers).status_code == 404
    assert count_rows(engine, "demo_line_items") == 0
