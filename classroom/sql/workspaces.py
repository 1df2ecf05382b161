"""Workspace statements the ORM cannot say as well: the one-live-per-link conflict target, the unconverged stops,
a student's disks for a heartbeat, and revoking the agents of closed courses once their instances are down."""

from __future__ import annotations

from sqlalchemy import text

from classroom.sql import sql_states
from classroom.workspaces.lifecycle import COMMITTED_DISK, DOWN, ENDED, WANTS_DOWN

# The predicate of the partial unique index uq_workspaces_one_live, for INSERT ... ON CONFLICT to infer it.
ONE_LIVE_WHERE = f"state NOT IN {sql_states(ENDED)}"

# Raw: the partial index ix_workspaces_unconverged_stops answers it without reading a converged row.
UNCONVERGED_SQL = text(
    f"SELECT id FROM workspaces WHERE desired_state IN {sql_states(WANTS_DOWN)} AND state NOT IN {sql_states(DOWN)}"
    " ORDER BY id"
)

# Raw: one student's position in one course, read for a single heartbeat (the sweep reads everyone's in bulk).
LEASE_STUDENT_SQL = text("""
SELECT c.term_end, c.time_zone, p.budget_per_student AS budget,
       -- the heartbeat's other course reads, from the same two rows: term-end notice and activity collection
       c.label, c.title, c.context_id, p.course_id IS NOT NULL AS has_policy,
       p.archive_retention_days, p.disk_grace_days, p.integrity,
       COALESCE((SELECT s.record_commands FROM integrity_settings s WHERE s.course_id = c.id), false)
           AS record_commands,
       COALESCE((SELECT SUM(g.amount) FROM budget_grants g
                 WHERE g.course_id = c.id AND g.person_id = :person), 0) AS granted,
       COALESCE((SELECT t.spent FROM spend_totals t WHERE t.course_id = c.id AND t.person_id = :person), 0) AS spent,
       (SELECT r.access_until FROM student_restores r  -- a restored student's access ends later than the term
        WHERE r.course_id = c.id AND r.person_id = :person AND r.closed_at IS NULL AND r.access_until > :now)
           AS restored_until
FROM courses c LEFT JOIN course_policies p ON p.course_id = c.id
WHERE c.id = :course
""")

# Raw: the student's workspaces that hold a disk or are about to (requested: reserved like the sweep's), with
# the state as text for the heartbeat's pure decision.
LEASE_DISKS_SQL = text(f"""
SELECT instance_type, volume_gb, CAST(state AS text) AS state, metered_until FROM workspaces
WHERE course_id = :course AND person_id = :person
  AND state IN {sql_states(COMMITTED_DISK)}
""")

# Revocation reaches the instance: a closed course's keys are revoked at once, but each agent keeps its token until
# its instance is down, so its last heartbeats fetch the empty key list (and, refused afterwards, wipe keys).
REVOKE_STOPPED_AGENTS = text(f"""
UPDATE workspaces w SET agent_token_revoked_at = :now
FROM course_policies p
WHERE p.course_id = w.course_id AND p.closed_at IS NOT NULL AND p.term_end_actions ->> 'revoke_access' = 'true'
  AND w.agent_token_revoked_at IS NULL
  AND w.state IN {sql_states(DOWN)}
  AND NOT EXISTS (SELECT 1 FROM student_restores r WHERE r.workspace_id = w.id AND r.closed_at IS NULL)
""")
