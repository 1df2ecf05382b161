"""The office-hours forms and queries, one model per route (see `lti_app.boundary`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from classroom.dashboard_rules import FLAGS, SORTS
from classroom.services.help_requests import MESSAGE_MAX, NOTE_MAX
from classroom.services.messages import BODY_MAX, CLIENT_KEY_MAX, SUBJECT_MAX
from classroom.ta_text import PATH_MAX
from lti_app.boundary import FormModel, OptionalId

LINE_FIELD_MAX = 12  # "10000000" and some blanks: longer is not a line number

FlagName = Literal["", *FLAGS]  # type: ignore[valid-type]
SortName = Literal[*SORTS]  # type: ignore[valid-type]


class DashboardQueryForm(FormModel):
    """The dashboard's search, filters and sort."""

    q: str = Field(default="", max_length=100)
    section: str = Field(default="", max_length=255)
    flag: FlagName = ""
    state: str = Field(default="", max_length=32)
    sort: SortName = "flags"
    order: Literal["asc", "desc"] = "asc"
    page: int = Field(default=1, ge=1, le=100_000)


class AskForm(FormModel):
    """A student's help request (the service checks the text, the path and the line)."""

    message: str = Field(default="", max_length=MESSAGE_MAX + 100)
    file_path: str = Field(default="", max_length=PATH_MAX + 10)
    line: str = Field(default="", max_length=LINE_FIELD_MAX)
    workspace: OptionalId = None


class AskQuery(FormModel):
    """Which workspace page the student came from."""

    ws: OptionalId = None


class ResolveForm(FormModel):
    """Staff's note when resolving."""

    note: str = Field(default="", max_length=NOTE_MAX + 100)


class MessageForm(FormModel):
    """Staff's message to a student."""

    subject: str = Field(default="", max_length=SUBJECT_MAX + 50)
    body: str = Field(default="", max_length=BODY_MAX + 100)
    file_path: str = Field(default="", max_length=PATH_MAX + 10)
    line: str = Field(default="", max_length=LINE_FIELD_MAX)
    client_key: str = Field(default="", max_length=CLIENT_KEY_MAX)
    help_request: OptionalId = None


class ComposeQuery(FormModel):
    """A message started from a help request."""

    help: OptionalId = None


class ReplyForm(FormModel):
    """The student's reply."""

    body: str = Field(default="", max_length=BODY_MAX + 100)
    client_key: str = Field(default="", max_length=CLIENT_KEY_MAX)
