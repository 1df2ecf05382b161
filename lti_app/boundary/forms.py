"""The form and query models of the staff and student pages, one per route (see `lti_app.boundary`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from classroom.materials import COLLISION_MODES
from classroom.models import LmsLineItem, StaffLevel, UsageMode, WorkspaceFolder
from classroom.services.template_requests import NOTE_MAX, REASON_MAX
from lti_app.boundary import Checkbox, Flag, FormModel, Ids, OptionalId, column_max

SSH_KEY_MAX = 16_384  # an OpenSSH public key line: RSA-16384 is ~2.8 kB; far above any real key
NUMBER_MAX = 32  # a number typed into a form ("12.5", "1e3"): longer is not a number anyone meant
ZONE_MAX = 64  # an IANA zone name ("America/Argentina/ComodRivadavia" is 32)
TOKEN_MAX = 128  # the tool's own opaque tokens (import previews)
GRANT_REASON_MAX = 2000  # raw; parse_grant keeps 500 after collapsing blanks (budget_grants.reason is Text)
FOLDER_MAX = 255  # a materials folder path, cleaned part by part by classroom.materials
MATERIAL_PATH_MAX = 1024  # S3's key limit; classroom.materials bounds each part
UPLOAD_ID_MAX = 1024  # S3 multipart upload ids are opaque, a few hundred characters


class UsageSettingForm(FormModel):
    """Roster page, "Usage in the LMS gradebook": on or off, and where usage goes."""

    usage_passback: Checkbox = False
    usage_mode: UsageMode | None = None  # absent: keep the course's choice


class StaffLevelForm(FormModel):
    """Staff page: the level the owner gives one member."""

    level: StaffLevel


class TemplateRequestForm(FormModel):
    """A student's request for an on-request template (the service checks the sentence and the template)."""

    reason: str = Field(default="", max_length=REASON_MAX)


class DecisionForm(FormModel):
    """An instructor's approval or denial of a template request."""

    note: str = Field(default="", max_length=NOTE_MAX)


class KeyUploadForm(FormModel):
    """A public key the student already has (provisioning.ssh_keys parses it)."""

    public_key: str = Field(default="", max_length=SSH_KEY_MAX)


class WorkspaceActionForm(FormModel):
    """Stop, start or remove: removal needs the box ticked; staff give a reason (checked by parse_reason)."""

    confirm: Checkbox = False
    reason: str | None = None


class StartForm(FormModel):
    """Start on the workspace page: the course's own Start, or the link's."""

    scope: Literal["course", "link"] = "link"


class LineItemForm(FormModel):
    """A new gradebook column (lms_sync.grades.add_line_item checks the name and the points)."""

    label: str = Field(default="", max_length=column_max(LmsLineItem.label))
    points: str = Field(default="", max_length=NUMBER_MAX)


class RetryForm(FormModel):
    """Send failed grades again: the ones named, or every failed one."""

    grade_id: Ids = []
    all: Checkbox = False
    item: OptionalId = None


class GradesQuery(FormModel):
    """The Grades page: which column is open."""

    item: OptionalId = None


class ImportConfirmForm(FormModel):
    """Import the previewed roster rows (all, or only the valid ones)."""

    token: str = Field(default="", max_length=TOKEN_MAX)
    valid_only: Checkbox = False


class MaterialsForm(FormModel):
    """Materials upload: the folder and what to do with a name already used (the files are read apart)."""

    folder: str = Field(default="", max_length=FOLDER_MAX)
    on_conflict: Literal[COLLISION_MODES] = "ask"  # type: ignore[valid-type]


class UploadStartForm(FormModel):
    """Start a direct upload: the file's relative path (folders kept), its size, what to do on a clash."""

    path: str = Field(min_length=1, max_length=MATERIAL_PATH_MAX)
    size: int = Field(ge=0, le=5 * 1024**4)  # S3's largest object, 5 TiB
    on_conflict: Literal[COLLISION_MODES] = "ask"  # type: ignore[valid-type]


class UploadRefForm(FormModel):
    """One upload in progress: its stored path, S3's upload id and its part count."""

    path: str = Field(min_length=1, max_length=MATERIAL_PATH_MAX)
    upload_id: str = Field(min_length=1, max_length=UPLOAD_ID_MAX)
    parts: int = Field(default=1, ge=1, le=10_000)


class MaterialPathForm(FormModel):
    """Delete one material."""

    path: str = Field(min_length=1, max_length=MATERIAL_PATH_MAX)


class MaterialRenameForm(FormModel):
    """Rename or move one material (never over an existing one)."""

    path: str = Field(min_length=1, max_length=MATERIAL_PATH_MAX)
    new_path: str = Field(min_length=1, max_length=MATERIAL_PATH_MAX)


class AllowanceForm(FormModel):
    """The course's materials storage allowance, in GB (classroom.materials.parse_allowance_gb checks it)."""

    allowance_gb: str = Field(default="", max_length=NUMBER_MAX)


class DeepLinkForm(FormModel):
    """The deep-linking picker (classroom.deep_link_form.parse_assignment_form holds the rules)."""

    template: str = Field(default="", max_length=64)
    title: str = Field(default="", max_length=column_max(WorkspaceFolder.title))
    due_at: str = Field(default="", max_length=NUMBER_MAX)
    points: str = Field(default="", max_length=NUMBER_MAX)
    time_zone: str = Field(default="", max_length=ZONE_MAX)
    confirm_past: Checkbox = False  # a due date already past is sent only when confirmed

    def values(self) -> dict[str, str]:
        """The fields as the pure parser and the re-shown form take them."""
        return self.model_dump(exclude={"confirm_past"})


class GrantForm(FormModel):
    """Extra budget for a student or the course (lti_app.budget_views.parse_grant holds the rules)."""

    person: str = Field(default="", max_length=NUMBER_MAX)
    amount: str = Field(default="", max_length=NUMBER_MAX)
    reason: str = Field(default="", max_length=GRANT_REASON_MAX)


class ReportQuery(FormModel):
    """The budget report after a grant, or with a grant's amount to preview (what it would leave)."""

    granted: OptionalId = None
    amount: str = Field(default="", max_length=NUMBER_MAX)


class StaffPageQuery(FormModel):
    """The staff page after a change."""

    changed: Flag = False
