"""A fresh home as the local runtime's template gives it, and the check that a home's environment works.

On EC2 a template is an image: a fresh instance boots it and cloud-init writes the student's keys. The local
runtime shares the host's /usr (read-only), so its template home is: /etc/skel's dotfiles, plus `~/.venv`, a
virtualenv on the template's Python (with its system packages) activated by `.bashrc`. Both are made inside
the workspace's own sandbox, so every path in them is the one the student sees. A reset seeds the new home
with it; a first start still gets an empty home (the runtime's `prepare`), as before.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from provisioning.runtime.sandbox import HOST_UID, SandboxSpec, as_nobody, bwrap_argv, prepare

SKEL = Path("/etc/skel")
ACTIVATE = '\n# Cloud Workstation template: the course Python environment\n[ -f "$HOME/.venv/bin/activate" ] && . "$HOME/.venv/bin/activate"\n'  # noqa: E501
MAKE_VENV = "python3 -m venv --without-pip --system-site-packages $HOME/.venv"
CHECK = "$HOME/.venv/bin/python -c 'import sys; print(sys.prefix)'"


class TemplateError(RuntimeError):
    """The template home could not be made, or the environment does not work (the message says why)."""


def sandbox_spec(root: Path, instance_id: str, workspace_id: int, course_id: int, os_user: str) -> SandboxSpec:
    """The sandbox the runtime will give this instance (the same folders as LocalRuntime.sandbox_for)."""
    mount = f"/mnt/course{course_id}-materials"
    return SandboxSpec(os_user=os_user, home=root / "homes" / instance_id,
                       materials=root / "materials" / mount.strip("/").replace("/", "_"), mount_point=mount,
                       etc=root / "etc" / instance_id, hostname=f"ws{workspace_id}")  # fmt: skip


def _run(spec: SandboxSpec, script: str) -> str:
    argv, as_user = as_nobody(bwrap_argv(spec, ["/bin/bash", "-c", script], {}))
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120, **as_user)  # noqa: S603
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TemplateError(f"the sandbox did not run: {exc}") from exc
    if done.returncode != 0:
        raise TemplateError(f"{script.split()[0]} failed in the new workspace: {done.stderr.strip()[-300:]}")
    return done.stdout


def seed_home(spec: SandboxSpec, banner: str = "") -> None:
    """Write the template home into an empty (new) home: skel dotfiles, then ~/.venv made in the sandbox."""
    prepare(spec, banner)
    for item in SKEL.iterdir() if SKEL.is_dir() else []:
        target = spec.home / item.name
        if item.is_file() and not item.is_symlink() and not target.exists():
            shutil.copyfile(item, target)
            if target.name == ".bashrc":
                target.write_text(target.read_text() + ACTIVATE)
            _own(target)
    if not (spec.home / ".bashrc").exists():
        (spec.home / ".bashrc").write_text(ACTIVATE)
        _own(spec.home / ".bashrc")
    _run(spec, MAKE_VENV)


def check_environment(spec: SandboxSpec) -> str:
    """Run the environment's Python in the sandbox; returns what it printed (TemplateError when it fails)."""
    return _run(spec, CHECK).strip()


def _own(path: Path) -> None:
    import os

    if os.geteuid() == 0:
        os.chown(path, HOST_UID, HOST_UID)
