"""The agent's side of EC2 debug sessions: the view user's read-only home, ending sessions, uploading recordings.

- `ensure_view_firewall`, then `ensure_view_mount`, at each boot (neither survives a reboot): the view user is
  kept off the loopback (an iptables owner rule: the student's Jupyter would otherwise act for it), then the
  student's home is bind-mounted read-only at the view user's home, id-mapped so the student's files read as the
  view user's own (Linux 5.12+ open_tree/mount_setattr/move_mount, through ctypes). Writes fail with "Read-only
  file system"; the view user cannot reach the real home (another uid). Without the rule no view is mounted, so
  view-only sessions refuse to start.
- `end_closed`: the heartbeat answer lists the workspace's live sessions (`debug_open`); a recorder of any other
  session gets SIGTERM and its shell's processes SIGKILL (the certificate's validity already refuses new logins).
- `write_krl`: the heartbeat answer lists the serials of the workspace's certificates revoked before their expiry
  (`revoked_serials`); they go into sshd's RevokedKeys, so an ended session's certificate opens nothing new.
- `upload_recordings`: each finished *.cast in the spool is POSTed to the tool with the workspace's token and
  removed once the tool took it (or refused it for good); a network failure keeps it for the next minute.
Stdlib only.
"""

import contextlib
import ctypes
import os
import pwd
import signal
import stat
import subprocess
import time
import urllib.error
import urllib.request

try:  # in the tool: a package; on a workspace: files side by side in the agent's folder
    from provisioning.agent.cwc_debug_shell import RECORDER_NAME, SPOOL, VIEW_USER, read_only_mount, session_members
except ImportError:  # pragma: no cover - the workspace's layout
    from cwc_debug_shell import RECORDER_NAME, SPOOL, VIEW_USER, read_only_mount, session_members

MAX_CAST_BYTES = 32 * 1024 * 1024  # the tool's limit
CA_KEYS = "/etc/ssh/cwc_user_ca.pub"  # the course CA (user data)
REVOKED_KEYS = "/etc/ssh/cwc_revoked.krl"  # sshd's RevokedKeys (provisioning.userdata)
CLONE_NEWUSER = 0x10000000
OPEN_TREE_CLONE, OPEN_TREE_CLOEXEC, AT_EMPTY_PATH, AT_FDCWD = 1, 0o2000000, 0x1000, -100
MOUNT_ATTR_RDONLY, MOUNT_ATTR_NOSUID, MOUNT_ATTR_NODEV, MOUNT_ATTR_IDMAP = 0x1, 0x2, 0x4, 0x100000
MOVE_MOUNT_F_EMPTY_PATH = 0x4
SYS_OPEN_TREE, SYS_MOVE_MOUNT, SYS_MOUNT_SETATTR = 428, 429, 442  # the same on x86_64 and aarch64


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64), ("propagation", ctypes.c_uint64),
                ("userns_fd", ctypes.c_uint64)]  # fmt: skip


def _libc():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def _check(result, what):
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def _userns(uid_from, uid_to, gid_from, gid_to):
    """An open user namespace fd whose maps send the on-disk uid/gid `*_from` to `*_to` (for MOUNT_ATTR_IDMAP)."""
    libc = _libc()
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child only unshares and waits: the namespace lives while someone holds its fd
        try:
            os.write(ready_w, b"1" if libc.unshare(CLONE_NEWUSER) == 0 else b"0")
            os.read(go_r, 1)
        finally:
            os._exit(0)
    try:
        if os.read(ready_r, 1) != b"1":
            raise OSError("cannot create a user namespace for the view mount")
        with open(f"/proc/{pid}/uid_map", "w") as f:
            f.write(f"{uid_from} {uid_to} 1\n")
        with open(f"/proc/{pid}/gid_map", "w") as f:
            f.write(f"{gid_from} {gid_to} 1\n")
        return os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.write(go_w, b"1")
        os.waitpid(pid, 0)
        for fd in (ready_r, ready_w, go_r, go_w):
            os.close(fd)


def view_firewall_rule(view_user=VIEW_USER):
    """The OUTPUT rule that keeps the view user off the loopback (the student's Jupyter and other local servers
    would let a read-only session act as the student)."""
    return ["OUTPUT", "-o", "lo", "-m", "owner", "--uid-owner", view_user, "-j", "REJECT"]


def ensure_view_firewall(view_user=VIEW_USER, run=subprocess.run):
    """Insert the rule (IPv4, and IPv6 where the kernel has it) unless present; False when it could not be."""
    tools = ["iptables"] + (["ip6tables"] if os.path.exists("/proc/net/if_inet6") else [])
    rule = view_firewall_rule(view_user)
    for tool in tools:
        try:
            if run([tool, "-C", *rule], capture_output=True, check=False).returncode == 0:
                continue
            if run([tool, "-I", *rule[:1], "1", *rule[1:]], capture_output=True, check=False).returncode != 0:
                return False
        except OSError:  # no iptables on this image
            return False
    return True


def ensure_view_mount(home, student, view_user=VIEW_USER):
    """Mount `home` read-only at the view user's home, id-mapped to the view user; "mounted" or "already"."""
    st, view = pwd.getpwnam(student), pwd.getpwnam(view_user)
    target = view.pw_dir
    if read_only_mount(target):
        return "already"
    libc = _libc()
    ns = _userns(st.pw_uid, view.pw_uid, st.pw_gid, view.pw_gid)
    tree = -1
    try:
        tree = _check(libc.syscall(SYS_OPEN_TREE, AT_FDCWD, home.encode(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC),
                      "open_tree")  # fmt: skip
        attr = _MountAttr(MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_IDMAP, 0, 0, ns)
        _check(libc.syscall(SYS_MOUNT_SETATTR, tree, b"", AT_EMPTY_PATH, ctypes.byref(attr), ctypes.sizeof(attr)),
               "mount_setattr")  # fmt: skip
        _check(libc.syscall(SYS_MOVE_MOUNT, tree, b"", AT_FDCWD, target.encode(), MOVE_MOUNT_F_EMPTY_PATH),
               "move_mount")  # fmt: skip
    finally:
        os.close(ns)
        if tree >= 0:
            os.close(tree)
    return "mounted"


def recorders(proc_root="/proc"):
    """(pid, label) of every running recorder."""
    found = []
    for entry in os.listdir(proc_root):
        if not entry.isdigit():
            continue
        try:
            with open(os.path.join(proc_root, entry, "cmdline"), "rb") as f:
                words = f.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        for i, word in enumerate(words[:-1]):
            if os.path.basename(word) == RECORDER_NAME:
                found.append((int(entry), words[i + 1]))
                break
    return found


def _children(pid, proc_root="/proc"):
    try:
        with open(os.path.join(proc_root, str(pid), "task", str(pid), "children")) as f:
            return [int(c) for c in f.read().split()]
    except (OSError, ValueError):
        return []


def end_closed(open_labels, proc_root="/proc", grace_s=5.0):
    """End every recorder whose session the tool no longer lists: SIGTERM first (it tells the staff member, ends
    its shell's session and finishes the recording), then SIGKILL for whatever is left after `grace_s`.
    Returns the labels ended."""
    ended, left = [], []
    for pid, label in recorders(proc_root):
        if label in open_labels:
            continue
        left += [pid] + [m for child in _children(pid, proc_root) for m in session_members(child, proc_root)]
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
        ended.append(label)
    deadline = time.monotonic() + grace_s
    while left and time.monotonic() < deadline:
        left = [p for p in left if os.path.exists(os.path.join(proc_root, str(p)))]
        time.sleep(0.1)
    for pid in left:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    return ended


def write_krl(serials, ca_path=CA_KEYS, krl_path=REVOKED_KEYS, run=subprocess.run):
    """sshd's RevokedKeys: a KRL of the course CA's revoked serials (ssh-keygen -k), replaced atomically and only
    when the list changed; False when it could not be made (the old one stays: sshd never lacks the file)."""
    wanted = "".join(f"serial: {int(s)}\n" for s in sorted(set(serials)))
    state = krl_path + ".serials"
    try:
        with open(state) as f:
            if f.read() == wanted and os.path.exists(krl_path):
                return True
    except OSError:
        pass
    tmp = krl_path + ".tmp"
    with open(state + ".tmp", "w") as f:
        f.write(wanted)
    argv = ["ssh-keygen", "-q", "-k", "-f", tmp] + (["-s", ca_path, state + ".tmp"] if wanted else [])
    with contextlib.suppress(OSError):
        os.unlink(tmp)
    if run(argv, capture_output=True, check=False).returncode != 0:
        return False
    os.chmod(tmp, 0o644)
    os.replace(tmp, krl_path)
    os.replace(state + ".tmp", state)
    return True


def recordings_url(heartbeat_url, label):
    """Where a session's recording goes: next to the heartbeat endpoint."""
    return heartbeat_url.rsplit("/", 1)[0] + "/debug-recordings/" + label


def post_cast(url, data, token, timeout=60):
    """POST a recording with the agent's bearer token; the HTTP status."""
    req = urllib.request.Request(url, data=data, method="POST", headers={
        "Content-Type": "application/x-asciicast", "Authorization": "Bearer " + token})  # fmt: skip
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _read_cast(path, writers):
    """The file's bytes, or None unless it is a regular file with one link written by a session user."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1 or st.st_uid not in writers:
            return None
        return f.read(MAX_CAST_BYTES + 1)


def _orphan(name, proc_root):
    """A recording whose recorder is gone without finishing it (`LABEL.TIME.PID.part`, that pid no recorder):
    killed, say by the session's own user. What it wrote until then is sent like a finished one."""
    parts = name.split(".")
    if len(parts) != 4 or parts[3] != "part" or not parts[2].isdigit():
        return False
    try:
        with open(os.path.join(proc_root, parts[2], "cmdline"), "rb") as f:
            return RECORDER_NAME.encode() not in f.read()
    except OSError:
        return True


def upload_recordings(cfg, spool=SPOOL, post=post_cast, proc_root="/proc"):
    """Send every finished (or orphaned) recording; returns how many the tool took."""
    try:
        names = sorted(n for n in os.listdir(spool) if n.endswith(".cast") or _orphan(n, proc_root))
    except OSError:
        return 0
    writers = set()  # the two session users: the view user and the student
    for user in (VIEW_USER, cfg.get("user", "")):
        with contextlib.suppress(KeyError):
            writers.add(pwd.getpwnam(user).pw_uid)
    sent = 0
    for name in names:
        path = os.path.join(spool, name)
        try:
            data = _read_cast(path, writers)
        except OSError:
            continue
        label = name.split(".", 1)[0]
        if data is None or not label.isalnum() or len(data) > MAX_CAST_BYTES:
            print("cwc-agent: recording not sent (not a session user's file, bad name or too large):", name, flush=True)
            os.unlink(path)
            continue
        try:
            status = post(recordings_url(cfg["url"], label), data, cfg["token"])
        except OSError:
            return sent  # the tool is down: the next minute tries again
        if status == 200:
            sent += 1
        elif status in (408, 429) or status >= 500:
            continue
        else:
            print("cwc-agent: recording refused by the tool:", name, status, flush=True)
        os.unlink(path)
    return sent
