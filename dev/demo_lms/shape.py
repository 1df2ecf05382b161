"""The Demo LMS's shape: Canvas-like (default) or Moodle-like (`CWC_DEMO_LMS_SHAPE=moodle`), as measured in 4.5.

Moodle-like means: non-editing teachers (the TA personas) launch as `Instructor` and are `Learner` in NRPS (never
`TeachingAssistant`); each launch id (`lti_message_hint`) works once ("Invalid request" after); no platform
storage (`lti_storage_target` is never sent), so a browser without third-party cookies needs the new window.
"""

from __future__ import annotations

import hashlib

from redis import Redis

from config.settings import Settings
from dev.demo_lms.models import DemoMember
from dev.demo_lms.seed import INSTRUCTOR, LEARNER

MOODLE = "moodle"
USED_HINT = "cwc:demo-lms:hint-used:"
USED_HINT_TTL_S = 13 * 3600  # longer than a hint lives (HINT_MAX_AGE_S)


def is_moodle(settings: Settings) -> bool:
    """True when the Demo LMS plays Moodle."""
    return settings.demo_lms_shape == MOODLE


def launch_roles(settings: Settings, member: DemoMember) -> list[str]:
    """The roles claim at launch: Moodle sends Instructor to anyone who may manage the activity."""
    if is_moodle(settings) and member.kind == "ta":
        return [INSTRUCTOR]
    return list(member.roles)


def roster_roles(settings: Settings, member: DemoMember) -> list[str]:
    """The roles in NRPS: Moodle's course-level check lists non-editing teachers as Learner."""
    if is_moodle(settings) and member.kind == "ta":
        return [LEARNER]
    return list(member.roles)


def storage_target(settings: Settings) -> str:
    """`lti_storage_target` for the login: Moodle 4.5 sends none."""
    return "" if is_moodle(settings) else "_parent"


def use_hint(settings: Settings, redis: Redis, hint: str) -> bool:
    """Moodle deletes its launch id on first use: False when this hint was used before (only in Moodle shape)."""
    if not is_moodle(settings):
        return True
    key = USED_HINT + hashlib.sha256(hint.encode()).hexdigest()
    return bool(redis.set(key, "1", nx=True, ex=USED_HINT_TTL_S))
