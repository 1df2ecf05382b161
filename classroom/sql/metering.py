"""The ledger's statements: accrue every workspace's cost since it was last metered, and book a late `running`."""

from __future__ import annotations

from sqlalchemy import text

from classroom.sql import sql_states
from classroom.workspaces.archive_rules import ARCHIVE_RUN_ENDS
from classroom.workspaces.lifecycle import BILLING_COMPUTE, BILLING_DISK, ENDED

# Raw: one set-based pass over every workspace (what costs what: the sets in lifecycle.py). The running of a start
# for the archive only, [af, au) (archive_rules.archive_run_end / archive_run_share), is booked to the course as an
# 'archive_run' line keyed like the ledger row (workspace, period start), and left out of the student's row.
ACCRUE_SQL = text(f"""
WITH due AS (
    SELECT w.id, w.course_id, w.person_id, w.metered_until AS a, w.instance_type, w.volume_gb,
           CASE WHEN w.state IN {sql_states(ENDED)} THEN LEAST(w.state_changed_at, :now) ELSE :now END AS b,
           w.archive_started_at AS af,
           (SELECT min(x.at) FROM workspace_events x
            WHERE x.workspace_id = w.id AND x.at > w.archive_started_at
              AND x.to_state IN {sql_states(ARCHIVE_RUN_ENDS)}) AS au
    FROM workspaces w
    WHERE w.metered_until < CASE WHEN w.state IN {sql_states(ENDED)}
                                 THEN LEAST(w.state_changed_at, :now) ELSE :now END
    FOR UPDATE OF w SKIP LOCKED  -- a row busy elsewhere is accrued next minute, from where it stopped
),
ev AS (  -- the state in effect at the period's start, then the changes inside the period (index range scans)
    SELECT d.id AS workspace_id, e.to_state, e.at,
           lead(e.at) OVER (PARTITION BY d.id ORDER BY e.at, e.id) AS until
    FROM due d
    CROSS JOIN LATERAL (
        (SELECT x.at, x.id, x.to_state FROM workspace_events x
         WHERE x.workspace_id = d.id AND x.at <= d.a ORDER BY x.at DESC, x.id DESC LIMIT 1)
        UNION ALL
        (SELECT x.at, x.id, x.to_state FROM workspace_events x
         WHERE x.workspace_id = d.id AND x.at > d.a AND x.at < d.b)
    ) e
),
parts AS (
    SELECT d.id, ev.to_state,
           EXTRACT(EPOCH FROM (LEAST(COALESCE(ev.until, 'infinity'::timestamptz), d.b) - GREATEST(ev.at, d.a))) AS secs,
           CASE WHEN d.af IS NULL THEN 0 ELSE GREATEST(0, EXTRACT(EPOCH FROM (
               LEAST(COALESCE(ev.until, 'infinity'::timestamptz), d.b, COALESCE(d.au, 'infinity'::timestamptz))
               - GREATEST(ev.at, d.a, d.af)))) END AS archive_secs
    FROM due d JOIN ev ON ev.workspace_id = d.id
    WHERE ev.at < d.b AND COALESCE(ev.until, 'infinity'::timestamptz) > d.a
),
price AS (
    SELECT key AS instance_type, value::numeric AS hourly FROM jsonb_each_text(CAST(:prices AS jsonb))
),
cost AS (
    SELECT d.id, d.course_id, d.person_id, d.a, d.b, d.volume_gb, pr.hourly,
           COALESCE(SUM(p.secs - p.archive_secs) FILTER (WHERE p.to_state IN {sql_states(BILLING_COMPUTE)}), 0)
               AS run_secs,
           COALESCE(SUM(p.archive_secs) FILTER (WHERE p.to_state IN {sql_states(BILLING_COMPUTE)}), 0) AS course_secs,
           COALESCE(SUM(p.secs) FILTER (WHERE p.to_state IN {sql_states(BILLING_DISK)}), 0) AS disk_secs
    FROM due d
    LEFT JOIN parts p ON p.id = d.id
    JOIN price pr ON pr.instance_type = d.instance_type  -- unpriced: left unmetered (and stopped by the sweep)
    GROUP BY d.id, d.course_id, d.person_id, d.a, d.b, d.volume_gb, pr.hourly
),
ins AS (
    INSERT INTO ledger_entries (workspace_id, course_id, person_id, period_start, period_end, running_seconds,
                                compute, storage, created_at)
    SELECT id, course_id, person_id, a, b, run_secs, run_secs * hourly / 3600,
           disk_secs * CAST(:gb_hour AS numeric) * volume_gb / 3600, :now
    FROM cost
    ON CONFLICT (workspace_id, period_start) DO NOTHING
    RETURNING workspace_id, course_id, person_id, period_end, running_seconds, compute, storage
),
course_run AS (  -- the archive-only run: a course line, booked with the ledger row it was taken from (once)
    INSERT INTO course_charges (course_id, person_id, kind, ref, period_start, period_end, quantity, amount,
                                created_at)
    SELECT c.course_id, NULL, 'archive_run', 'workspace ' || c.id, c.a, c.b, c.course_secs,
           c.course_secs * c.hourly / 3600, :now
    FROM cost c JOIN ins i ON i.workspace_id = c.id
    WHERE c.course_secs > 0
    ON CONFLICT ON CONSTRAINT uq_course_charges_once DO NOTHING
    RETURNING 1
),
daily AS (
    INSERT INTO spend_daily (course_id, person_id, day, compute, storage, running_seconds)
    SELECT i.course_id, i.person_id, (i.period_end AT TIME ZONE  -- an unknown zone must not abort the sweep
               CASE WHEN c.time_zone IN (SELECT unnest(CAST(:zones AS text[]))) THEN c.time_zone ELSE 'UTC' END)::date,
           SUM(i.compute), SUM(i.storage), SUM(i.running_seconds)
    FROM ins i JOIN courses c ON c.id = i.course_id
    GROUP BY 1, 2, 3
    ON CONFLICT (course_id, person_id, day) DO UPDATE
       SET compute = spend_daily.compute + EXCLUDED.compute,
           storage = spend_daily.storage + EXCLUDED.storage,
           running_seconds = spend_daily.running_seconds + EXCLUDED.running_seconds
    RETURNING 1
)
UPDATE workspaces w SET metered_until = ins.period_end
FROM ins WHERE w.id = ins.workspace_id
RETURNING w.id
""")

# Raw: the ledger row and the day's total in one statement, idempotent on (workspace, period start).
LATE_RUNNING_SQL = text("""
WITH ins AS (
    INSERT INTO ledger_entries (workspace_id, course_id, person_id, period_start, period_end, running_seconds,
                                compute, storage, created_at)
    VALUES (:ws, :course, :person, :start, :end, :secs, CAST(:secs AS numeric) * CAST(:hourly AS numeric) / 3600,
            0, :now)
    ON CONFLICT (workspace_id, period_start) DO NOTHING
    RETURNING course_id, person_id, period_end, running_seconds, compute
)
INSERT INTO spend_daily (course_id, person_id, day, compute, storage, running_seconds)
SELECT i.course_id, i.person_id, (i.period_end AT TIME ZONE
           CASE WHEN c.time_zone IN (SELECT unnest(CAST(:zones AS text[]))) THEN c.time_zone ELSE 'UTC' END)::date,
       i.compute, 0, i.running_seconds
FROM ins i JOIN courses c ON c.id = i.course_id
ON CONFLICT (course_id, person_id, day) DO UPDATE
   SET compute = spend_daily.compute + EXCLUDED.compute,
       running_seconds = spend_daily.running_seconds + EXCLUDED.running_seconds
RETURNING 1
""")
