"""NRPS roster sync of a 5,000-member course (pages of 100) on PostgreSQL, and a re-sync of the unchanged roster.

    python -m bench.roster [--members 5000]

A real platform serves NRPS over HTTP on loopback (tests/lms_sync/support/lms_platform.py); the sync runs as the
RQ job body does (`lms_sync.jobs.sync_course_roster`). Printed: seconds, HTTP pages, SQL statements and rows
written for the first sync, the unchanged full re-sync and the differences re-sync; statements for a course a
fifth the size (they must grow with pages, not members); and the floor in the same run: fetching the same
pages with the same adapter and writing nothing. Targets: < 5 s, statements independent of members, 0 row
writes on the re-sync.
"""

from __future__ import annotations

import argparse
import time

from lms_sync.context import lti_services
from lms_sync.jobs import sync_course_roster
from lms_sync.roster_sync import fetch_roster, first_page_url
from tests.lms_sync.support.benchkit import bench_world, verdict


def _roster(lms, members: int) -> None:  # type: ignore[no-untyped-def]
    for n in range(4):
        lms.add(f"ta-{n}", "ta", name=f"Teaching Assistant {n}")
    for n in range(members - 5):
        lms.add(f"student-{n:05d}", "student", name=f"Student Number{n}", email=f"student{n}@university.edu")


def _run(members: int) -> dict[str, float]:
    with bench_world(f"roster{members}") as (ctx, lms, course, sql):
        _roster(lms, members)
        with ctx.sessions() as session:  # the floor: the same HTTP pages through the same adapter, no database work
            adapter = lti_services(session, ctx, course.course_id)
        started = time.perf_counter()
        fetched, _, floor_pages = fetch_roster(adapter, first_page_url(lms.nrps_url))
        floor = time.perf_counter() - started
        assert len(fetched) == members
        sql.reset()
        started = time.perf_counter()
        first = sync_course_roster(course.course_id, 1)
        first_s, first_stmts, first_rows = time.perf_counter() - started, sql.statements, sql.written
        sql.reset()
        started = time.perf_counter()
        again = sync_course_roster(course.course_id, 1)
        again_s, again_stmts, again_rows = time.perf_counter() - started, sql.statements, sql.written
        sql.reset()
        started = time.perf_counter()
        diff = sync_course_roster(course.course_id, 0)
        diff_s, diff_stmts, diff_rows = time.perf_counter() - started, sql.statements, sql.written
        assert first["added"] == members - 1 and again["added"] == 0 and diff["pages"] == 1, (first, again, diff)
        return {
            "members": members,
            "pages": first["pages"],
            "floor_s": floor,
            "floor_pages": floor_pages,
            "first_s": first_s,
            "first_stmts": first_stmts,
            "first_rows": first_rows,
            "again_s": again_s,
            "again_stmts": again_stmts,
            "again_rows": again_rows,
            "diff_s": diff_s,
            "diff_stmts": diff_stmts,
            "diff_rows": diff_rows,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=5000)
    args = parser.parse_args()
    small = _run(max(10, args.members // 5))
    big = _run(args.members)
    print(f"roster sync, {big['members']} members in pages of 100 ({big['pages']} HTTP pages), PostgreSQL")
    print(f"  floor (fetch the {big['floor_pages']} pages, no DB):  {big['floor_s']:.2f} s")
    print(
        f"  first sync:                   {big['first_s']:.2f} s  ({big['first_s'] / big['floor_s']:.2f}x floor)  "
        f"{big['first_stmts']} SQL statements, {big['first_rows']} rows written"
    )
    print(
        f"  re-sync, unchanged (full):    {big['again_s']:.2f} s  ({big['again_s'] / big['floor_s']:.2f}x floor)  "
        f"{big['again_stmts']} SQL statements, {big['again_rows']} rows written"
    )
    print(
        f"  re-sync, differences link:    {big['diff_s']:.2f} s  {big['diff_stmts']} SQL statements, "
        f"{big['diff_rows']} rows written"
    )
    print(
        f"  statements, first sync: {small['members']} members ({small['pages']} pages) -> {small['first_stmts']}, "
        f"{big['members']} members ({big['pages']} pages) -> {big['first_stmts']}"
    )
    print(
        f"  target < 5 s: {verdict(big['first_s'] < 5)}; statements independent of members: "
        f"{verdict(big['first_stmts'] <= small['first_stmts'] + 2)}; "
        f"0 row writes on re-sync: {verdict(big['again_rows'] == 0 and big['diff_rows'] == 0)}"
    )


if __name__ == "__main__":
    main()
