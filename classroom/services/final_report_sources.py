"""Adapter: figures the final report reads from tables another feature owns, by name through SQL.

`similarity_runs` belongs to the integrity feature (classroom.models.integrity, migration 0023); reading it by
name keeps this module free of that package, and a database without the table reports "no run" (None).
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

# The latest finished run of each assignment; its pairs are those at or above the course's threshold.
FLAGGED_PAIRS_SQL = text("""
SELECT count(*) AS runs, COALESCE(sum(jsonb_array_length(pairs)), 0) AS pairs FROM (
  SELECT DISTINCT ON (link_key) pairs FROM similarity_runs
  WHERE course_id = :course AND status = 'done'
  ORDER BY link_key, finished_at DESC NULLS LAST, id DESC
) latest
""")


def flagged_pairs(session: Session, course_id: int) -> int | None:
    """Pairs flagged by the latest similarity run of each assignment; None when there was no run."""
    if session.scalar(text("SELECT to_regclass('similarity_runs') IS NOT NULL")) is not True:
        return None
    runs, pairs = session.execute(FLAGGED_PAIRS_SQL, {"course": course_id}).one()
    return int(pairs) if runs else None
