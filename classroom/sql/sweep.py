"""The sweep's statements: every student's position, the disks held, the alerts sent, and the batched stop claim.

The sweep stops `SWEEP_STOPS` (running workspaces meant to run); a stopping one is billed (`BILLING_COMPUTE`) but
already on its way down, so it is not claimed twice.
"""

from __future__ import annotations

from sqlalchemy import bindparam, text

from classroom.budget.enforcement import ENFORCEMENT_ACTOR
from classroom.models import EnrollmentStatus
from classroom.sql import sql_states, sql_value
from classroom.workspaces.lifecycle import COMMITTED_DISK, SWEEP_STOPS, DesiredState, WorkspaceState

S = WorkspaceState
D = DesiredState

# Raw: every student's position in one pass (the ORM would be one query per student).
POSITIONS_SQL = text(f"""
WITH zones AS (  -- a course's time zone PostgreSQL does not know must not abort the sweep for every course
    SELECT unnest(CAST(:zones AS text[])) AS name
), running AS (
    SELECT DISTINCT course_id, person_id FROM workspaces WHERE state IN {sql_states(SWEEP_STOPS)}
), grants AS (
    SELECT course_id, person_id, SUM(amount) AS amount FROM budget_grants WHERE person_id IS NOT NULL GROUP BY 1, 2
), who AS (
    SELECT course_id, person_id FROM spend_totals UNION SELECT course_id, person_id FROM running
), pos AS (
    SELECT who.course_id, who.person_id, c.term_end, c.time_zone, c.time_zone IN (SELECT name FROM zones) AS zone_ok,
           (CAST(:now AS timestamptz) AT TIME ZONE
               CASE WHEN c.time_zone IN (SELECT name FROM zones) THEN c.time_zone ELSE 'UTC' END)::date AS today,
           COALESCE(e.status = {sql_value(EnrollmentStatus.ACTIVE)}, false) AS enrolled,
           COALESCE(p.budget_per_student, 0) + COALESCE(g.amount, 0) AS cap,
           COALESCE(t.spent, 0) AS spent,
           COALESCE(p.max_daily_cost, 0) AS daily_cap,
           COALESCE(p.idle_stop_minutes, 0) AS idle_minutes
    FROM who
    JOIN courses c ON c.id = who.course_id
    LEFT JOIN course_policies p ON p.course_id = who.course_id
    LEFT JOIN grants g ON g.course_id = who.course_id AND g.person_id = who.person_id
    LEFT JOIN spend_totals t ON t.course_id = who.course_id AND t.person_id = who.person_id
    LEFT JOIN enrollments e ON e.course_id = who.course_id AND e.person_id = who.person_id
)
SELECT pos.*,
       COALESCE((SELECT d.compute + d.storage + d.transfer FROM spend_daily d  -- one primary-key lookup
                 WHERE d.course_id = pos.course_id AND d.person_id = pos.person_id AND d.day = pos.today), 0)
           AS spent_today
FROM pos
""")

# Raw: every workspace holding a disk or about to (requested), with its course's term and disks' end, for the
# storage reserve and stops.
RUNNING_SQL = text(f"""
SELECT w.id, w.course_id, w.person_id, w.instance_type, w.volume_gb, w.state, w.template_id, w.archiving_until,
       GREATEST(w.last_activity_at, w.state_changed_at) AS active, c.term_end, c.time_zone,
       COALESCE(p.disk_grace_days, 14) AS grace_days, COALESCE(p.archive_retention_days, 365) AS retention_days
FROM workspaces w JOIN courses c ON c.id = w.course_id LEFT JOIN course_policies p ON p.course_id = w.course_id
WHERE w.state IN {sql_states(COMMITTED_DISK)}
""")

SENT_SQL = text("SELECT course_id, person_id, kind, day FROM alerts_sent WHERE day = :once OR day >= :since")

# Raw: claim every stop of the minute in one statement (skip busy rows), intent and event included.
STOP_SQL = text(f"""
WITH target AS (  -- a row locked elsewhere is left for the next minute rather than waited for
    SELECT id FROM workspaces
    WHERE id IN :ids AND state IN {sql_states(SWEEP_STOPS)} AND desired_state = {sql_value(D.RUNNING)}
    FOR UPDATE SKIP LOCKED
), changed AS (  -- intent first (desired: hibernated), then the observed claim; the stop job calls AWS
    UPDATE workspaces w SET state = {sql_value(S.STOPPING)}, stop_mode = 'hibernate', state_changed_at = :now,
           desired_state = {sql_value(D.HIBERNATED)}, desired_changed_at = :now,
           stop_attempts = 0, stop_last_error = '', stop_next_try_at = NULL, stop_alerted_at = NULL
    FROM target WHERE w.id = target.id
    RETURNING w.id
)
INSERT INTO workspace_events (workspace_id, at, from_state, to_state, actor, reason)
SELECT changed.id, :now, {sql_value(S.RUNNING)}, {sql_value(S.STOPPING)}, '{ENFORCEMENT_ACTOR}', r.reason
FROM changed
JOIN (SELECT unnest(CAST(:rid AS int[])) AS id, unnest(CAST(:reasons AS text[])) AS reason) r ON r.id = changed.id
RETURNING workspace_id
""").bindparams(bindparam("ids", expanding=True))

# Raw: record the minute's alerts at once; the constraint makes each alert once only.
RECORD_ALERTS_SQL = text("""
INSERT INTO alerts_sent (course_id, person_id, kind, day, created_at)
SELECT * FROM unnest(CAST(:courses AS int[]), CAST(:people AS int[]), CAST(:kinds AS text[]), CAST(:days AS date[]),
                     CAST(:ats AS timestamptz[]))
ON CONFLICT ON CONSTRAINT uq_alerts_sent_once DO NOTHING
RETURNING course_id, person_id, kind, day
""")
