"""Office hours through real LTI launches: help requests (ask, claim once, resolve, told), messages (sent, read,
replied, attachment), the dashboard, and a role check for every new route."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import select, update

from classroom.models import AuditEvent, Enrollment, HelpRequest, Notification, OutboxEmail, Person, StaffMessage
from classroom.roles import StaffLevel
from tests.conftest import count_rows
from tests.support.budget import ensure_policies
from tests.support.lti import launch, tool_token
from tests.support.platform import ROLES, User

SOPHIE = User("student-sophie", "Sophie Martin", "sophie@university.edu", ROLES["student"])
DAVID = User("student-david", "David Kim", "david@university.edu", ROLES["student"])
ALEX = User("ta-alex", "Alex Thompson", "alex@university.edu", ROLES["ta"])
PRIYA = User("ta-priya", "Priya Patel", "priya@university.edu", ROLES["ta"])
MARTINEZ = User("prof-martinez", "Jennifer Martinez", "martinez@university.edu", ROLES["instructor"])
OTHER_PROF = User("prof-other", "Grace Hopper", "hopper@university.edu", ROLES["instructor"])


@dataclass
class Course:
    """Tool tokens of everyone in CS 229 (and an instructor of another course), with CSRF values."""

    tokens: dict[str, str]
    forms: dict[str, dict[str, str]]
    ids: dict[str, int]


def _form(app, token: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    from lti_app.auth import csrf_token

    with app.app_context():
        return {"t": token, "csrf_token": csrf_token(token)}


@pytest.fixture
def cs229(app, client, session, canvas) -> Course:  # type: ignore[no-untyped-def]
    tokens = {"martinez": tool_token(launch(client, canvas, MARTINEZ))}
    for name, user in (("alex", ALEX), ("priya", PRIYA), ("sophie", SOPHIE), ("david", DAVID)):
        tokens[name] = tool_token(launch(client, canvas, user))
    tokens["other"] = tool_token(launch(client, canvas, OTHER_PROF, context_id="other-course"))
    ensure_policies(session)
    ids = {name: session.scalar(select(Person.id).where(Person.sub == u.sub))
           for name, u in (("sophie", SOPHIE), ("david", DAVID), ("alex", ALEX), ("priya", PRIYA))}  # fmt: skip
    session.execute(update(Enrollment).where(Enrollment.person_id == ids["alex"]).values(level=StaffLevel.HEAD_TA))
    session.commit()
    return Course(tokens, {k: _form(app, v) for k, v in tokens.items()}, ids)  # type: ignore[misc]


def _audits(session, action: str) -> list[AuditEvent]:  # type: ignore[no-untyped-def]
    session.expire_all()
    return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_sophie_asks_alex_claims_priya_is_told_alex_resolves_and_sophie_is_told(client, session, engine, cs229):
    f = cs229.forms
    ask = {**f["sophie"], "message": "My training loss is NaN after epoch 2", "file_path": "~/homework/hw3/train.py",
           "line": "42"}  # fmt: skip
    assert client.post("/app/help", data=ask).status_code == 303
    second = client.post("/app/help", data={**ask, "message": "still NaN!"})  # a second click: the same request
    assert second.status_code == 303 and "already=" in second.headers["Location"]
    req = session.scalar(select(HelpRequest))
    assert count_rows(engine, "help_requests") == 1 and req.file_path == "homework/hw3/train.py" and req.line == 42
    told = session.scalars(select(Notification.person_id).where(Notification.subject == "Sophie Martin asked for help"))
    assert set(told) == {
        cs229.ids["alex"],
        cs229.ids["priya"],
        session.scalar(select(Person.id).where(Person.sub == MARTINEZ.sub)),
    }  # fmt: skip  (every staff member, once; not the other course)
    queue = client.get("/app/help", query_string={"t": cs229.tokens["priya"]}).get_data(as_text=True)
    assert (
        "Sophie Martin" in queue and "training loss is NaN" in queue and f"/app/students/{req.person_id}/debug" in queue
    )
    board = client.get("/app/dashboard", query_string={"t": cs229.tokens["alex"]}).get_data(as_text=True)
    assert "open request" in board and "Sophie Martin" in board
    assert client.post(f"/app/help/{req.id}/claim", data=f["alex"]).status_code == 303
    assert client.post(f"/app/help/{req.id}/claim", data=f["alex"]).status_code == 303  # Alex again: no-op
    audits = len(_audits(session, "help.claimed"))
    lost = client.post(f"/app/help/{req.id}/claim", data=f["priya"])  # Priya clicked too: told who won
    assert lost.status_code == 409 and "Alex Thompson already claimed" in lost.get_data(as_text=True)
    assert len(_audits(session, "help.claimed")) == audits == 1
    session.expire_all()
    assert session.get(HelpRequest, req.id).claimed_by == cs229.ids["alex"]
    empty = client.post(f"/app/help/{req.id}/resolve", data={**f["alex"], "note": "  "})
    assert empty.status_code == 422 and _audits(session, "help.resolved") == []
    note = "Your batch size is 4096; use 64 and the learning rate 1e-3."
    assert client.post(f"/app/help/{req.id}/resolve", data={**f["alex"], "note": note}).status_code == 303
    again = client.post(f"/app/help/{req.id}/resolve", data={**f["priya"], "note": "me too"})
    assert again.status_code == 409 and len(_audits(session, "help.resolved")) == 1
    event = _audits(session, "help.resolved")[0]
    assert event.actor_person_id == cs229.ids["alex"] and event.subject == str(cs229.ids["sophie"])
    assert event.details["help_request"] == req.id and event.details["minutes_to_resolution"] >= 0
    mine = client.get("/app/help/mine", query_string={"t": cs229.tokens["sophie"]}).get_data(as_text=True)
    assert note in mine and "Resolved in" in mine
    assert session.scalar(select(OutboxEmail).where(OutboxEmail.to_address == SOPHIE.email,
                                                    OutboxEmail.subject.like("%resolved%"))) is not None  # fmt: skip
    queue = client.get("/app/help", query_string={"t": cs229.tokens["alex"]}).get_data(as_text=True)
    assert "1 request, 1 resolved" in queue and "1 within 15 min" in queue and "most active: Alex Thompson (2)" in queue


def test_bad_help_requests_are_refused_with_the_text_kept_and_nothing_written(client, engine, cs229):
    f = cs229.forms["sophie"]
    for data in ({"message": ""}, {"message": "x", "line": "abc", "file_path": "a.py"},
                 {"message": "x", "line": "3"}, {"message": "x", "file_path": "../../etc/passwd"},
                 {"message": "y" * 4001}):  # fmt: skip
        resp = client.post("/app/help", data={**f, **data})
        assert resp.status_code == 422, data
    resp = client.post("/app/help", data={**f, "message": "keep me", "line": "zero", "file_path": "a.py"})
    assert "keep me" in resp.get_data(as_text=True)
    assert (
        count_rows(engine, "help_requests") == 0 and count_rows(engine, "audit_events WHERE action LIKE 'help.%'") == 0
    )


def test_a_read_only_ta_messages_sophie_who_reads_it_replies_and_the_read_state_shows(client, session, engine, cs229):
    f, sophie = cs229.forms, cs229.ids["sophie"]
    page = client.get(f"/app/students/{sophie}/messages", query_string={"t": cs229.tokens["priya"]})
    key = dict(__import__("re").findall(r'name="(client_key)" value="([^"]+)"', page.get_data(as_text=True)))
    data = {**f["priya"], "subject": "Batch size", "body": "Try 64 in train.py", "file_path": "homework/hw3/train.py",
            "line": "12", "client_key": key["client_key"]}  # fmt: skip
    from io import BytesIO

    files = {**data, "attachment": (BytesIO(b"batch_size = 64\n"), "fix.py")}
    assert (
        client.post(f"/app/students/{sophie}/messages", data=files, content_type="multipart/form-data").status_code
        == 303
    )
    assert client.post(f"/app/students/{sophie}/messages", data=data).status_code == 303  # double click: one message
    msg = session.scalar(select(StaffMessage))
    assert count_rows(engine, "staff_messages") == 1 and msg.attachment_size == 16 and msg.read_at is None
    assert len(_audits(session, "message.sent")) == 1
    assert session.scalar(select(OutboxEmail).where(OutboxEmail.to_address == SOPHIE.email,
                                                    OutboxEmail.subject.like("%Batch size%"))) is not None  # fmt: skip
    assert session.scalar(select(Notification).where(Notification.person_id == sophie)) is not None
    staff_view = client.get(f"/app/students/{sophie}/messages", query_string={"t": cs229.tokens["alex"]})
    assert "unread" in staff_view.get_data(as_text=True)
    inbox = client.get("/app/messages", query_string={"t": cs229.tokens["sophie"]}).get_data(as_text=True)
    assert "Try 64 in train.py" in inbox and "homework/hw3/train.py" in inbox and "fix.py" in inbox
    download = client.get(f"/app/messages/{msg.id}/attachment", query_string={"t": cs229.tokens["sophie"]})
    assert download.status_code == 200 and download.data == b"batch_size = 64\n"
    assert download.headers["Content-Type"] == "application/octet-stream"
    assert (
        client.get(f"/app/messages/{msg.id}/attachment", query_string={"t": cs229.tokens["david"]}).status_code == 404
    )
    assert (
        client.get(f"/app/messages/{msg.id}/attachment", query_string={"t": cs229.tokens["other"]}).status_code == 404
    )
    session.expire_all()
    assert session.get(StaffMessage, msg.id).read_at is not None
    assert "read " in client.get(f"/app/students/{sophie}/messages",
                                 query_string={"t": cs229.tokens["alex"]}).get_data(as_text=True)  # fmt: skip
    reply = {**f["sophie"], "body": "Thanks, it trains now", "client_key": "k1"}
    assert client.post(f"/app/messages/{msg.id}/reply", data=reply).status_code == 303
    assert client.post(f"/app/messages/{msg.id}/reply", data=reply).status_code == 303
    assert count_rows(engine, "staff_messages WHERE from_student") == 1
    assert session.scalar(select(Notification).where(Notification.person_id == cs229.ids["priya"])) is not None
    board = client.get("/app/dashboard", query_string={"t": cs229.tokens["martinez"]}).get_data(as_text=True)
    assert "1 new reply" in board
    # David cannot reply to Sophie's message
    other = {**f["david"], "body": "hi", "client_key": "k2"}
    assert client.post(f"/app/messages/{msg.id}/reply", data=other).status_code == 404
    assert count_rows(engine, "staff_messages") == 2


def test_bad_messages_are_refused_and_nothing_is_written(client, engine, cs229):
    f, sophie = cs229.forms["alex"], cs229.ids["sophie"]
    good = {"subject": "Hi", "body": "Text", "client_key": "abc"}
    for bad in ({"subject": ""}, {"body": ""}, {"line": "7"}, {"client_key": ""}, {"subject": "s" * 201}):
        resp = client.post(f"/app/students/{sophie}/messages", data={**f, **good, **bad})
        assert resp.status_code == 422, bad
    from io import BytesIO

    big = {**f, **good, "attachment": (BytesIO(b"x" * (256 * 1024 + 1)), "big.bin")}
    resp = client.post(f"/app/students/{sophie}/messages", data=big, content_type="multipart/form-data")
    assert resp.status_code == 422 and "too large" in resp.get_data(as_text=True)
    # staff are not students, and another course's student is not found
    assert client.post(f"/app/students/{cs229.ids['priya']}/messages", data={**f, **good}).status_code == 404
    assert (
        count_rows(engine, "staff_messages") == 0
        and count_rows(engine, "audit_events WHERE action LIKE 'message.%'") == 0
    )


ROUTES = [  # (method, path template, who may: role names, the others' expected status)
    ("GET", "/app/dashboard", {"alex", "priya", "martinez"}),
    ("GET", "/app/help", {"alex", "priya", "martinez"}),
    ("GET", "/app/help/mine", {"sophie", "david"}),
    ("POST", "/app/help", {"sophie", "david"}),
    ("POST", "/app/help/{req}/claim", {"alex", "priya", "martinez"}),
    ("POST", "/app/help/{req}/resolve", {"alex", "priya", "martinez"}),
    ("GET", "/app/students/{sophie}/messages", {"alex", "priya", "martinez"}),
    ("POST", "/app/students/{sophie}/messages", {"alex", "priya", "martinez"}),
    ("GET", "/app/messages", {"sophie", "david"}),
    ("POST", "/app/messages/{msg}/reply", {"sophie"}),
    ("GET", "/app/messages/{msg}/attachment", {"sophie", "alex", "priya", "martinez"}),
]


def _expected(template: str, allowed: set[str], who: str) -> set[int]:
    if who in allowed:
        return {200, 303, 409}  # 409: a second staff member's claim or resolve
    staff_route = "alex" in allowed
    if who == "other":  # staff in their own course: their own (empty) pages, CS 229's rows are not found
        return ({200} if "{" not in template else {404}) if staff_route else {403}
    if who == "david" and "sophie" in allowed:
        return {404}  # Sophie's message is not David's
    return {403}


def test_every_new_route_checks_role_and_course_for_every_role(app, client, session, engine, cs229):
    """student, other student, TA, head TA, instructor, another course's instructor, anonymous."""
    from classroom.services.help_requests import ask_for_help
    from classroom.services.messages import Attachment, Draft, send_message

    course_id = session.scalar(select(Enrollment.course_id).where(Enrollment.person_id == cs229.ids["sophie"]))
    req, _ = ask_for_help(session, course_id, cs229.ids["sophie"], message="help")
    file = Attachment("a.txt", "text/plain", b"a")
    msg, _ = send_message(session, course_id, author_id=cs229.ids["alex"], student_id=cs229.ids["sophie"],
                          draft=Draft("s", "b", client_key="seed"), attachment=file)  # fmt: skip
    session.commit()
    values = {"req": req.id, "sophie": cs229.ids["sophie"], "msg": msg.id}
    bodies = {"/app/help": {"message": "x"}, "/resolve": {"note": "done"}, "/messages": {"subject": "s", "body": "b"},
              "/reply": {"body": "r"}}  # fmt: skip
    for method, template, allowed in ROUTES:
        path = template.format(**values)
        body = next((b for suffix, b in bodies.items() if path.endswith(suffix)), {})
        for who in ("sophie", "david", "priya", "alex", "martinez", "other", None):
            before = count_rows(engine, "audit_events")
            if who is None:
                resp = client.get(path) if method == "GET" else client.post(path, data=body)
                assert resp.status_code == 401, (path, who)
                assert count_rows(engine, "audit_events") == before
                continue
            form = {**cs229.forms[who], **body, "client_key": f"{who}-{path}"}
            resp = (client.get(path, query_string={"t": cs229.tokens[who]}) if method == "GET"
                    else client.post(path, data=form))  # fmt: skip
            assert resp.status_code in _expected(template, allowed, who), (path, who, resp.status_code)
            if resp.status_code >= 400:
                assert count_rows(engine, "audit_events") == before, (path, who)
            if method == "POST":
                no_csrf = client.post(path, data={"t": cs229.tokens[who], **body})
                assert no_csrf.status_code == 403, (path, who)
    # the other course's instructor is staff there, yet reaches nothing of CS 229
    for path in (f"/app/students/{cs229.ids['sophie']}/messages", f"/app/messages/{msg.id}/attachment"):
        assert client.get(path, query_string={"t": cs229.tokens["other"]}).status_code == 404
    assert client.post(f"/app/help/{req.id}/claim", data=cs229.forms["other"]).status_code == 404
    other_board = client.get("/app/dashboard", query_string={"t": cs229.tokens["other"]}).get_data(as_text=True)
    assert "Sophie Martin" not in other_board


def test_dashboard_filters_refuse_junk_with_a_4xx_and_search_finds_by_email(client, cs229):
    token = cs229.tokens["alex"]
    for query in ({"sort": "bogus"}, {"flag": "nope"}, {"order": "sideways"}, {"q": "x" * 101}, {"page": "0"},
                  {"page": "x"}):  # fmt: skip
        assert client.get("/app/dashboard", query_string={"t": token, **query}).status_code == 422, query
    assert "David Kim" in client.get("/app/dashboard", query_string={"t": token, "page": "7"}).get_data(as_text=True)
    found = client.get("/app/dashboard", query_string={"t": token, "q": "DAVID@university"}).get_data(as_text=True)
    assert "David Kim" in found and "Sophie Martin" not in found
    by_state = client.get("/app/dashboard", query_string={"t": token, "state": "none", "sort": "name", "order": "desc"})
    html = by_state.get_data(as_text=True)
    assert by_state.status_code == 200 and html.index("Sophie Martin") < html.index("David Kim")


def test_names_emails_and_sections_are_escaped_on_the_dashboard(client, session, cs229):
    evil = '<img src=x onerror="alert(1)">'
    session.execute(update(Person).where(Person.id == cs229.ids["david"]).values(name=evil, email=f"{evil}@u.edu"))
    session.execute(update(Enrollment).where(Enrollment.person_id == cs229.ids["david"]).values(section=evil))
    session.commit()
    html = client.get("/app/dashboard", query_string={"t": cs229.tokens["alex"]}).get_data(as_text=True)
    assert evil not in html and "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in html


def test_before_set_up_the_dashboard_says_no_budget_rather_than_zero_of_zero(client, session, canvas):
    token = tool_token(launch(client, canvas, MARTINEZ))
    launch(client, canvas, DAVID)
    before = client.get("/app/dashboard", query_string={"t": token}).get_data(as_text=True)
    assert "no budget set yet" in before and "$0.00 of $0.00" not in before
    ensure_policies(session)
    after = client.get("/app/dashboard", query_string={"t": token}).get_data(as_text=True)
    assert "$0.00 of $24.00" in after and "no budget set yet" not in after
