"""Which home reader serves a workspace: the local runtime's folder on this machine, or the EC2 instance over SSH.

Views and jobs call `home_reader` and get an object with the same three reads (browse, zip_folder, tar_gz_home);
`readable` says beforehand, without connecting, whether the home can be read and if not, why (for the pages).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from classroom.models import Workspace
from config.settings import Settings
from provisioning.instance_ssh import SshFailure, WorkspaceSshError, ec2_endpoint, tool_credentials
from provisioning.remote_home import RemoteHome
from provisioning.runtime.home_files import HomeFiles, LocalHome
from provisioning.ssh_ca import TOOL_READ_COMMAND, TOOL_RESTORE_COMMAND

HomeReader = LocalHome | RemoteHome


def local_homes(settings: Settings) -> HomeFiles:
    """The local runtime's homes (<data dir>/runtime/homes; `make run` and the tests)."""
    return HomeFiles((settings.data_dir / "runtime" / "homes").resolve())


def readable(ws: Workspace, settings: Settings) -> tuple[bool, str]:
    """Whether the workspace's home can be read now (without connecting), else the reason for the page."""
    if local_homes(settings).available(ws.instance_id):
        return True, ""
    try:
        ec2_endpoint(ws, port=settings.workspace_ssh_port)
    except WorkspaceSshError as exc:
        if exc.failure is SshFailure.NOT_PINNED and settings.runtime_ssh_port and not settings.is_production:
            return False, "the local runtime makes this workspace's home at its first login, and nobody has logged in."
        return False, str(exc)
    return True, ""


def home_reader(
    session: Session, ws: Workspace, settings: Settings, *, why: str, person_id: int | None, restore: bool = False
) -> HomeReader:
    """The reader for this workspace's home; WorkspaceSshError (its message for the page) when it cannot be read.
    On EC2 a key is made for the connection and the course CA signs it for read-only SFTP (nothing is written),
    or with `restore` for SFTP that may create folders and files only (a backup's restore)."""
    homes = local_homes(settings)
    if homes.available(ws.instance_id):
        return LocalHome(homes, str(ws.instance_id))
    endpoint = ec2_endpoint(ws, port=settings.workspace_ssh_port)
    command = TOOL_RESTORE_COMMAND if restore else TOOL_READ_COMMAND
    key, cert = tool_credentials(session, settings=settings, workspace=ws, why=why, person_id=person_id,
                                 command=command)  # fmt: skip
    return RemoteHome(endpoint, key, cert)
