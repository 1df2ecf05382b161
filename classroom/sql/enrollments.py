"""Course membership statements: a launch's person, course and enrollment upserts, and the roster's set-based writes.

A launch's upserts are text because SQLAlchemy never caches a PostgreSQL insert() with ON CONFLICT (its dialect
Insert has inherit_cache = False), and compiling them cost ~1.2 ms a launch. The roster's are text to bind whole
columns as arrays through unnest: one statement per kind of change, whatever the number of members.
"""

from __future__ import annotations

from sqlalchemy import text

from classroom.models import DeploymentStatus, Enrollment, EnrollmentStatus
from classroom.sql import enum_cast, sql_value

# Each launch upsert is written once, with a FROM slot: the instructors' path runs them alone (no FROM),
# MEMBER_LAUNCH runs them only when the deployment is approved.
_PERSON = """
INSERT INTO people (platform_id, sub, name, given_name, family_name, email, is_test_user, created_at, updated_at)
SELECT :platform_id, :sub, :name, :given_name, :family_name, :email, :is_test_user, :now, :now {source}
ON CONFLICT ON CONSTRAINT uq_people_platform_sub DO UPDATE
SET name = EXCLUDED.name, given_name = EXCLUDED.given_name, family_name = EXCLUDED.family_name,
    email = EXCLUDED.email, is_test_user = EXCLUDED.is_test_user, updated_at = EXCLUDED.updated_at
RETURNING id
"""
_COURSE = """
INSERT INTO courses (platform_id, deployment_id, context_id, label, title, time_zone, created_at)
SELECT :platform_id, :deployment_pk, :context_id, :label, :title, 'UTC', :now {source}
ON CONFLICT ON CONSTRAINT uq_courses_platform_context DO UPDATE SET label = EXCLUDED.label, title = EXCLUDED.title
RETURNING id
"""
PERSON_UPSERT = text(_PERSON.format(source=""))
COURSE_UPSERT = text(_COURSE.format(source=""))

# A student's or TA's launch in one statement. The deployment's status is read again here (the registration
# may come from a per-process cache): when it is no longer approved nothing is written and no row comes back.
# A new enrollment's audit event is appended after it (classroom.audit, on the course's chain). An existing
# enrollment keeps its level: the caller decides whether the launch changes it (rare) and writes that separately.
MEMBER_LAUNCH = text(
    f"""
WITH dep AS (
    SELECT 1 FROM deployments WHERE id = :deployment_pk AND status = {sql_value(DeploymentStatus.APPROVED)}
), person AS ({_PERSON.format(source="FROM dep")}), course AS ({_COURSE.format(source="FROM dep")}), enrollment AS (
    INSERT INTO enrollments (course_id, person_id, lti_roles, level, status, section, created_at, last_launch_at)
    SELECT course.id, person.id, :lti_roles, {enum_cast(":level", Enrollment.level)},
           {sql_value(EnrollmentStatus.ACTIVE)}, '', :now, :now FROM person, course
    ON CONFLICT ON CONSTRAINT uq_enrollments_course_person DO UPDATE
    SET lti_roles = EXCLUDED.lti_roles, last_launch_at = EXCLUDED.last_launch_at
    RETURNING id, person_id, course_id, CAST(level AS text) AS level, CAST(status AS text) AS status,
              level_pinned AS pinned, xmax = 0 AS created
)
SELECT set_config('synchronous_commit', CASE WHEN enrollment.created THEN 'on' ELSE 'off' END, true) AS commit_mode,
       enrollment.*
FROM enrollment
"""
)
# synchronous_commit off (this transaction only) for a returning member: the rows are upserts a retried launch
# rewrites, so it need not wait for the WAL flush (a crash within ~0.2 s loses the whole transaction, nothing
# half-done). A launch that appends an audit event (a new enrollment) commits synchronously: the audit trail is
# never lost to a crash. Anything audited later in the transaction turns it back on (classroom.audit).

# The roster's new people (a CSV-imported or earlier member of the platform keeps what the LMS leaves empty).
ROSTER_ADD_PEOPLE = text("""
INSERT INTO people (platform_id, sub, name, given_name, family_name, email, is_test_user,
                    created_at, updated_at)
SELECT :platform, v.sub, v.name, v.given, v.family, v.email, v.test, :now, :now
FROM unnest(CAST(:subs AS text[]), CAST(:names AS text[]), CAST(:givens AS text[]),
            CAST(:families AS text[]), CAST(:emails AS text[]), CAST(:tests AS boolean[]))
     AS v(sub, name, given, family, email, test)
ON CONFLICT ON CONSTRAINT uq_people_platform_sub DO UPDATE SET
    name = COALESCE(NULLIF(EXCLUDED.name, ''), people.name),
    given_name = COALESCE(NULLIF(EXCLUDED.given_name, ''), people.given_name),
    family_name = COALESCE(NULLIF(EXCLUDED.family_name, ''), people.family_name),
    email = COALESCE(NULLIF(EXCLUDED.email, ''), people.email),
    updated_at = EXCLUDED.updated_at
RETURNING id, sub
""")

# The roster's new enrollments, active; roles joined with chr(31) (a role URI never contains it).
ROSTER_ADD_ENROLLMENTS = text(f"""
INSERT INTO enrollments (course_id, person_id, lti_roles, nrps_roles, level, status, section, created_at)
SELECT :course, v.person, '{{}}', string_to_array(v.roles, chr(31)), {enum_cast("v.level", Enrollment.level)},
       {sql_value(EnrollmentStatus.ACTIVE)}, v.section, :now
FROM unnest(CAST(:people AS int[]), CAST(:roles AS text[]), CAST(:levels AS text[]),
            CAST(:sections AS text[])) AS v(person, roles, level, section)
ON CONFLICT ON CONSTRAINT uq_enrollments_course_person DO NOTHING
""")

# CSV-imported people take their LMS identity.
ROSTER_CLAIM_SUBS = text(
    "UPDATE people SET sub = v.sub, updated_at = now() FROM unnest(CAST(:ids AS int[]), "
    "CAST(:subs AS text[])) AS v(id, sub) WHERE people.id = v.id"
)

ROSTER_UPDATE_PEOPLE = text("""
UPDATE people SET name = v.name, given_name = v.given, family_name = v.family, email = v.email,
                  updated_at = now()
FROM unnest(CAST(:ids AS int[]), CAST(:names AS text[]), CAST(:givens AS text[]),
            CAST(:families AS text[]), CAST(:emails AS text[])) AS v(id, name, given, family, email)
WHERE people.id = v.id
""")

# Level changes, reactivations and drops in one statement (levels and statuses bound as the enums' values).
ROSTER_SET_LEVELS = text(f"""
UPDATE enrollments
SET level = {enum_cast("v.level", Enrollment.level)}, status = {enum_cast("v.status", Enrollment.status)}
FROM unnest(CAST(:ids AS int[]), CAST(:levels AS text[]), CAST(:statuses AS text[]))
     AS v(id, level, status)
WHERE enrollments.id = v.id
""")

ROSTER_SET_ROLES = text(
    "UPDATE enrollments SET nrps_roles = string_to_array(v.roles, chr(31)) FROM unnest("
    "CAST(:ids AS int[]), CAST(:roles AS text[])) AS v(id, roles) WHERE enrollments.id = v.id"
)

ROSTER_SET_SECTIONS = text(
    "UPDATE enrollments SET section = v.section FROM unnest(CAST(:ids AS int[]), "
    "CAST(:sections AS text[])) AS v(id, section) WHERE enrollments.id = v.id"
)
