"""The seed's Problem 4 through the local runtime with real SSH: Emily works on hw5 over three sessions with 12
commits; David creates his workspace the day before the due date, receives emily-code.zip by scp, unzips it,
copies the solution, works 1 h 12 min, no commits; Sophie works on her own. Deadline snapshots, a similarity
run, the report (page, PDF through pdftotext, CSV) with the chain's hashes, and the audit of every view."""

from __future__ import annotations

import subprocess
import zipfile
from datetime import UTC, timedelta

from sqlalchemy import func, select

from classroom.integrity.snapshots import request_due_snapshots
from classroom.jobs.queue import make_worker
from classroom.models import AuditEvent, DeadlineSnapshot, SimilarityRun
from lti_app.auth import csrf_token
from tests.integrity.conftest import DUE, add_workspace, at, collect, local, work_session

STARTER = "".join(
    f"def provided_{i}(rows):\n    '''Given to everyone.'''\n    return [r * {i} for r in rows if r]\n\n"
    for i in range(12)
)


def solution(seed: int, lines: int = 160) -> str:
    """A student's own hw5_solution.py: the starter code and their own functions."""
    body = [STARTER]
    for i in range(lines // 6):
        body.append(
            f"def step_{seed}_{i}(x, w={seed + i}):\n    acc = x * w - {i * seed % 7}\n"
            f"    for k in range({i % 5 + seed}):\n        acc += k ** {i % 3 + 1}\n    return acc / {i + 2}\n\n"
        )
    return "".join(body)


def _write(text: str, path: str = "homework/hw5/hw5_solution.py") -> str:
    return f"mkdir -p homework/hw5 && cat > {path} <<'PYEOF'\n{text}PYEOF\n"


def _commit(msg: str, when) -> str:  # type: ignore[no-untyped-def]
    stamp = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")
    return (
        f"cd homework/hw5 && git add -A && GIT_AUTHOR_DATE={stamp} GIT_COMMITTER_DATE={stamp} "
        f"git -c user.name=Emily -c user.email=e@x commit -qm '{msg}'"
    )


def _emily(runtime, clock, c):  # type: ignore[no-untyped-def]
    code = solution(1).splitlines(keepends=True)
    parts = [len(code) // 3, 2 * len(code) // 3, len(code)]
    days = [(local(2024, 10, 15, 14, 30), 195), (local(2024, 10, 17, 18, 0), 195), (local(2024, 10, 20, 21, 0), 120)]
    n = 0
    for (start, minutes), upto in zip(days, parts, strict=True):
        commands = [_write("".join(code[:upto]))] + (["cd homework/hw5 && git init -q"] if n == 0 else [])
        for j in range(4):
            n += 1
            with_more = f"echo '# step {n}' >> homework/hw5/notes.md"
            commands += [with_more, _commit(f"hw5 step {n}", start + timedelta(minutes=10 + 40 * j))]
        work_session(runtime, clock, c, 1, start, minutes, commands)


def _sophie(runtime, clock, c):  # type: ignore[no-untyped-def]
    for k, (start, minutes) in enumerate([(local(2024, 10, 16, 10, 0), 180), (local(2024, 10, 18, 13, 0), 150)]):
        commands = [_write(solution(3, 80 + 80 * k)), "cd homework/hw5 && git init -q"]
        commands += [
            _commit(f"sophie part {k}.{j}", start + timedelta(minutes=20 * j + 5)).replace("Emily", "Sophie")
            + " --allow-empty"
            for j in range(3)
        ]
        work_session(runtime, clock, c, 3, start, minutes, commands)


def _david(runtime, clock, c, tmp_path):  # type: ignore[no-untyped-def]
    zipped = tmp_path / "emily-code.zip"
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("emily-code/hw5_solution.py", solution(1))
    typed = (  # in a terminal: the course records typed commands
        "unzip emily-code.zip",
        "mkdir -p homework/hw5 && cp emily-code/hw5_solution.py homework/hw5/",
        "echo '# mine' >> homework/hw5/hw5_solution.py",
    )
    work_session(runtime, clock, c, 2, local(2024, 10, 19, 22, 0), 72, [], upload=zipped, typed=typed)


def test_problem_4_report_flags_david_five_times_and_emily_only_for_similarity(
    runtime,
    clock,
    cs229,
    session,
    backend,
    client,
    redis,
    tmp_path,
    monkeypatch,
    database_url,
    redis_url,
):
    c = cs229
    add_workspace(session, backend, c, 1, local(2024, 10, 15, 14, 30))
    add_workspace(session, backend, c, 3, local(2024, 10, 16, 9, 55))
    add_workspace(session, backend, c, 2, local(2024, 10, 19, 22, 0))
    collect(runtime)  # the runtime learns the instances
    _emily(runtime, clock, c)
    _sophie(runtime, clock, c)
    _david(runtime, clock, c, tmp_path)

    # The due time passes: the scheduler wants a snapshot of each folder; the runtime sends them.
    at(clock, DUE + timedelta(hours=1))
    assert request_due_snapshots(session, now=DUE.astimezone(UTC) + timedelta(minutes=1)) == 3
    assert request_due_snapshots(session, now=DUE.astimezone(UTC) + timedelta(minutes=2)) == 0
    session.commit()
    collect(runtime)
    shots = {s.person_id: s for s in session.scalars(select(DeadlineSnapshot))}
    assert all(s.sha256 and s.s3_key.endswith(f"{s.sha256}.tar.gz") and s.files >= 1 for s in shots.values())
    david_sha = shots[c.students[2].id].sha256
    # A late edit changes nothing in the evidence kept, and shows as late.
    work_session(runtime, clock, c, 2, DUE + timedelta(hours=2), 5, ["echo '# late' >> homework/hw5/hw5_solution.py"])
    session.expire_all()
    assert session.get(DeadlineSnapshot, shots[c.students[2].id].id).sha256 == david_sha

    # Alex runs the similarity job over the snapshots, starter code left out.
    head = c.tokens["head_ta"]
    with client.application.app_context():
        csrf = csrf_token(head)
    resp = client.post(
        "/app/integrity/similarity",
        data={
            "t": head,
            "csrf_token": csrf,
            "assignment": "hw5",
            "starter": [(__import__("io").BytesIO(STARTER.encode()), "hw5_solution.py")],
        },
        content_type="multipart/form-data",
    )
    assert resp.status_code == 200 and "Queued" in resp.get_data(as_text=True)
    for name, value in {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "CWC_SECRET_KEY": "x" * 40,
        "CWC_AWS_ENDPOINT_URL": backend.ec2.meta.endpoint_url,
        "CWC_AWS_BUCKET": backend.bucket,
    }.items():
        monkeypatch.setenv(name, value)
    make_worker(redis, simple=True).work(burst=True)
    run = session.scalar(select(SimilarityRun))
    session.refresh(run)
    assert run.status == "done" and run.done == run.total == 3, run.error
    emily_id, david_id, sophie_id = (str(c.students[n].id) for n in (1, 2, 3))
    assert [(p["a"], p["b"]) for p in run.pairs] == [tuple(sorted((emily_id, david_id)))]
    assert run.pairs[0]["score"] >= 90
    page = client.get(f"/app/integrity/similarity/{run.id}", query_string={"t": head}).get_data(as_text=True)
    assert "Emily Chen and David Kim" in page or "David Kim and Emily Chen" in page
    pair = client.get(
        f"/app/integrity/similarity/{run.id}/pair", query_string={"t": head, "a": emily_id, "b": david_id}
    )
    assert pair.status_code == 200 and pair.get_data(as_text=True).count("<mark>") >= 2

    # The report: David has the seed's five indicators, Emily only the similarity pair, Sophie none.
    args = {"t": head, "assignment": "hw5", "start": "2024-10-15", "end": "2024-10-22"}
    html = client.get("/app/integrity/report", query_string=args)
    assert html.status_code == 200
    text = html.get_data(as_text=True)
    assert "indicators for investigation, not findings" in text
    pdf = client.get("/app/integrity/report", query_string={**args, "format": "pdf"})
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    (tmp_path / "r.pdf").write_bytes(pdf.data)
    out = subprocess.run(
        ["pdftotext", "-layout", str(tmp_path / "r.pdf"), "-"], capture_output=True, text=True, check=True
    ).stdout
    flags = out.split("Indicators for investigation", 1)[1].split("Audit-chain hashes", 1)[0]
    david_flags = [line for line in flags.splitlines() if "David Kim:" in line]
    assert len(david_flags) == 5, flags
    for words in (
        "Workspace created late",
        "Work time far below",
        "File transfer into the workspace",
        "Code similarity",
        "No git commits",
    ):
        assert any(words in line for line in david_flags), (words, flags)
    emily_flags = [line for line in flags.splitlines() if "Emily Chen:" in line]
    assert len(emily_flags) == 1 and "Code similarity" in emily_flags[0] and "David Kim" in emily_flags[0]
    assert "Sophie Martin:" not in flags
    assert "Git commits: 12" in out and "SSH logins: 3" in out and "(campus)" in out
    assert "emily-code.zip" in out and "Edits after the due time: 1" in out
    david = out.split("David Kim (", 1)[1].split("Emily Chen (", 1)[0]  # David's part, his one session first
    session_line = next(line for line in david.splitlines() if " from 127.0.0.1 (campus)" in line)
    typed = david.split(session_line, 1)[1].splitlines()[1:4]
    assert [line.rsplit(" [", 1)[0].strip() for line in typed] == [
        "$ unzip emily-code.zip",
        "$ mkdir -p homework/hw5 && cp emily-code/hw5_solution.py homework/hw5/",
        "$ echo '# mine' >> homework/hw5/hw5_solution.py",
    ], david  # listed under the session they were typed in, each with its chain hash
    assert "unzip emily-code.zip (1 files)" in david  # the extraction, from the recorded run
    cited = out.split("Audit-chain hashes of the events cited", 1)[1]
    chained = set(session.scalars(select(AuditEvent.hash).where(AuditEvent.action == "activity.recorded")))
    hashes = [w for w in cited.split() if len(w) == 64]
    assert len(hashes) > 20 and set(hashes) <= chained
    csv = client.get("/app/integrity/report", query_string={**args, "format": "csv"}).get_data(as_text=True)
    assert "indicator:no_git_history" in csv and hashes[0] in csv
    commands = [row for row in csv.splitlines() if row.startswith("David Kim,") and ",command," in row]
    assert len(commands) == 3 and all(row.rsplit(",", 1)[1] in chained for row in commands)
    assert "unzip emily-code.zip" in "".join(commands)

    # Every view was audited; the read-only TA and a student are refused and nothing is written.
    viewed = session.scalar(select(func.count()).where(AuditEvent.action == "integrity.report_viewed"))
    assert viewed == 3
    before = session.scalar(select(func.count()).select_from(AuditEvent))
    for who in ("ta", "emily"):
        assert client.get("/app/integrity/report", query_string={**args, "t": c.tokens[who]}).status_code == 403
    assert session.scalar(select(func.count()).select_from(AuditEvent)) == before
