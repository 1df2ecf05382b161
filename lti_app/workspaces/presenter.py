"""What the workspace pages show: state labels, progress, connect instructions, cost figures. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from classroom.budget.policy import money
from classroom.course_paths import course_slug
from classroom.models import Workspace
from classroom.workspaces.lifecycle import WorkspaceState, stop_converged
from config.catalog import WorkspaceTemplate
from config.prices import RegionPrices

S = WorkspaceState
LABELS = {
    S.REQUESTED: ("Queued", "Your request is in the queue.", 1),
    S.PROVISIONING: ("Starting up", "AWS is starting your machine. This takes about a minute.", 2),
    S.STARTING: ("Starting", "Your workspace is starting again.", 2),
    S.RUNNING: ("Running", "Your workspace is ready.", 3),
    S.STOPPING: ("Stopping", "Your workspace is stopping; your files are kept.", 3),
    S.STOPPED: ("Stopped", "Stopped: no compute cost; your disk is kept (a few cents a day).", 3),
    S.HIBERNATED: ("Hibernated", "Hibernated: your open programs resume when you start it again.", 3),
    S.TERMINATING: ("Removing", "Your workspace is being removed.", 3),
    S.TERMINATED: ("Removed", "This workspace was removed.", 3),
    S.FAILED: ("Could not start", "", 3),
}


@dataclass(frozen=True)
class CostFigures:
    """Cost of a template: per hour running, per day running 24/7, per day stopped."""

    hourly: str
    daily_24_7: str
    stopped_daily: str


def cost_figures(template: WorkspaceTemplate, prices: RegionPrices) -> CostFigures:
    """The figures students see before and after starting a workspace."""
    hourly = prices.running_hourly(template.instance_type) + prices.storage_hourly(template.root_volume_gb)
    return CostFigures(
        money(hourly),
        money(prices.daily(template.instance_type, template.root_volume_gb)),
        money(prices.storage_hourly(template.root_volume_gb) * 24),
    )


def stop_progress(ws: Workspace) -> tuple[str, str] | None:
    """(label, message) while a wanted stop is not yet what AWS reports; None when intent and AWS agree.

    Never "Stopped" while AWS still reports the machine up: the observed state is named, with the attempts.
    """
    if stop_converged(ws.desired_state, ws.state):
        return None
    if not ws.instance_id:
        return "Stopping…", "The launch is being cancelled; nothing runs and nothing is charged for compute."
    seen = "running" if ws.state is S.RUNNING else ws.state.value
    message = f"AWS still reports {seen}"
    if ws.stop_attempts:
        message += f", retrying (attempt {ws.stop_attempts})"
    if ws.stop_last_error:
        message += f"; last error: {ws.stop_last_error}"
    return "Stopping…", message + ". Compute is charged until AWS reports it stopped."


def status(
    ws: Workspace, template: WorkspaceTemplate | None, course_label: str, *, local_ssh_port: int = 0
) -> dict[str, object]:
    """JSON-able status for the page and its poller: the observed state, and the wanted one when they differ.

    With the local runtime (simulated account) the command reaches it on loopback at its port, as the
    workspace's login; on EC2 it reaches the instance's address as the template's user.
    """
    label, text, step = LABELS[ws.state]
    progress = stop_progress(ws)
    if progress is not None:
        label, text = progress
    elif ws.retire_after is not None and ws.state not in (S.TERMINATED, S.FAILED):
        label, text = "Being removed", "Its home is archived to S3 once it has stopped; then the machine and disk go."
    data: dict[str, object] = {
        "id": ws.id,
        "state": ws.state.value,
        "desired": ws.desired_state.value,
        "label": label,
        "message": ws.failure_reason if ws.state is S.FAILED else text,
        "step": step,
        "instance_type": ws.instance_type,
        "template": ws.template_id,
    }
    if ws.state is S.RUNNING and local_ssh_port and template is not None:
        key = f"~/.ssh/cwc_{course_slug(course_label, ws.course_id)}"
        data["ssh_command"] = f"ssh -p {local_ssh_port} -i {key} ws{ws.id}@127.0.0.1"
        data["local_runtime"] = True
    elif ws.state is S.RUNNING and ws.public_ip and template is not None:
        key = f"~/.ssh/cwc_{course_slug(course_label, ws.course_id)}"
        ssh = f"ssh -i {key} {template.os_user}@{ws.public_ip}"
        data["ssh_command"] = ssh
        if "jupyter" in template.connect:
            data["jupyter_tunnel"] = f"ssh -i {key} -L 8888:localhost:8888 {template.os_user}@{ws.public_ip}"
            data["jupyter_url"] = "http://localhost:8888"
    data["materials"] = f"/mnt/{course_slug(course_label, ws.course_id)}-materials"
    return data
