"""AGS passback's statements on lms_grades: claim pending grades, record outcomes, release stale claims.

Raw: each is one set-based pass (`FOR UPDATE SKIP LOCKED` for the claim, arrays through unnest for the outcomes),
with every status written from `GradeStatus` and the cast to its PostgreSQL type read from the model.
"""

from __future__ import annotations

from sqlalchemy import text

from classroom.models import GradeStatus, LmsGrade
from classroom.sql import enum_cast, sql_value

G = GradeStatus

# Up to :limit pending grades with a line item URL become posting (rows other jobs hold are skipped).
CLAIM_PENDING_SQL = text(f"""
UPDATE lms_grades g SET status = {sql_value(G.POSTING)}, claimed_at = now()
FROM lms_line_items li, people p
WHERE g.id IN (SELECT g2.id FROM lms_grades g2 JOIN lms_line_items l2 ON l2.id = g2.line_item_id
               WHERE g2.course_id = :course AND g2.status = {sql_value(G.PENDING)} AND l2.url <> ''
               ORDER BY g2.id LIMIT :limit FOR UPDATE OF g2 SKIP LOCKED)
  AND li.id = g.line_item_id AND p.id = g.person_id
RETURNING g.id, g.version, li.url, p.sub, g.score_given, g.score_maximum,
          concat_ws(E'\\n', NULLIF(g.comment, ''), NULLIF(g.usage_comment, '')), g.changed_at,
          g.posted_version > 0, g.attempts
""")

# Every outcome in one statement; a grade changed meanwhile (a newer version) keeps its new pending version.
RECORD_RESULTS_SQL = text(f"""
UPDATE lms_grades g SET
    status = CASE WHEN g.version = v.version THEN {enum_cast("v.status", LmsGrade.status)} ELSE g.status END,
    posted_version = CASE WHEN v.status = {sql_value(G.POSTED)} THEN GREATEST(g.posted_version, v.version)
                          ELSE g.posted_version END,
    posted_at = CASE WHEN v.status = {sql_value(G.POSTED)} THEN now() ELSE g.posted_at END,
    attempts = CASE WHEN g.version = v.version THEN v.attempts ELSE g.attempts END,
    last_error = CASE WHEN g.version = v.version THEN v.message ELSE g.last_error END,
    claimed_at = CASE WHEN g.version = v.version THEN NULL ELSE g.claimed_at END
FROM unnest(CAST(:ids AS bigint[]), CAST(:versions AS int[]), CAST(:statuses AS text[]),
            CAST(:attempts AS int[]), CAST(:messages AS text[]))
     AS v(id, version, status, attempts, message)
WHERE g.id = v.id
""")

# Grades whose job died while posting go back to pending.
RELEASE_STALE_SQL = text(
    f"UPDATE lms_grades SET status = {sql_value(G.PENDING)}, claimed_at = NULL "
    f"WHERE status = {sql_value(G.POSTING)} AND claimed_at < now() - make_interval(secs => :s)"
)
