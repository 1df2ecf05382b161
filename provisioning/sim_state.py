"""Keep the simulated AWS account (the in-process moto server of `make run`) across restarts.

Development only. moto keeps its account in memory, so a restarted `make run` used to find no instance and the
reconciler ended every workspace as "instance no longer exists". The moto backends of the services the tool
uses are plain Python objects: pickle them to `<data dir>/simulated-aws.pickle` (on shutdown and every few
seconds while running, so a killed process loses little) and load them back before the server answers.
A file that cannot be read (another moto version, a damaged file) is set aside and the account starts empty:
the reconciler then tells each student whose workspace was really lost.
"""

from __future__ import annotations

import logging
import os
import pickle  # noqa: S403 - our own file, written by this module under the developer's data dir
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# The services provisioning.aws talks to (plus STS, which boto3 may ask who we are).
SERVICES = ("ec2", "efs", "ssm", "s3", "iam", "cloudwatch", "sts")
STATE_FILE = "simulated-aws.pickle"


def _backend(name: str) -> Any:
    from moto.backends import get_backend

    return get_backend(name)  # type: ignore[call-overload]


def _nested_dict() -> defaultdict[Any, dict[Any, Any]]:
    return defaultdict(dict)


def _restore_defaultdict(items: dict[Any, Any]) -> defaultdict[Any, Any]:
    restored: defaultdict[Any, Any] = defaultdict(_nested_dict)
    restored.update(items)
    return restored


def _restore_subclass(cls: type[Any], factory: Any, state: dict[str, Any], items: dict[Any, Any]) -> Any:
    restored = cls.__new__(cls)
    defaultdict.__init__(restored, factory)
    restored.__dict__.update(state)
    restored.update(items)
    return restored


class _Pickler(pickle.Pickler):
    """pickle, plus moto's defaultdicts: made by `lambda: defaultdict(dict)` (SSM's resource tags), or subclasses
    whose __init__ takes other arguments (SSM's ParameterDict), which plain pickle cannot rebuild."""

    def reducer_override(self, obj: Any) -> Any:
        if not isinstance(obj, defaultdict):
            return NotImplemented
        factory = obj.default_factory
        if type(obj) is not defaultdict:
            return _restore_subclass, (type(obj), factory, dict(obj.__dict__), dict(obj))
        if factory is None or getattr(factory, "__name__", "") != "<lambda>":
            return NotImplemented
        sample = factory()
        if not (isinstance(sample, defaultdict) and sample.default_factory is dict):
            raise pickle.PicklingError(f"cannot keep a defaultdict made by {factory!r}")
        return _restore_defaultdict, (dict(obj),)


def save_state(path: Path) -> None:
    """Write every simulated service's state to `path` atomically (a temporary file, then a rename)."""
    blob = {name: _backend(name) for name in SERVICES}
    tmp = path.with_suffix(".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(tmp, "wb") as out:
        _Pickler(out, protocol=pickle.HIGHEST_PROTOCOL).dump(blob)
    os.replace(tmp, path)


def load_state(path: Path) -> bool:
    """Load the state saved in `path` into the running moto backends; True when an account was restored."""
    if not path.exists():
        return False
    try:
        with open(path, "rb") as src:
            blob = pickle.load(src)  # noqa: S301 - see the import
    except Exception as exc:  # noqa: BLE001 - any unreadable file: keep it for a look, start empty
        aside = path.with_suffix(".unreadable")
        os.replace(path, aside)
        log.warning("simulated AWS: cannot read %s (%s); starting with an empty account, kept it as %s",
                    path, type(exc).__name__, aside)  # fmt: skip
        return False
    for name, saved in blob.items():
        current = _backend(name)
        current.clear()
        current.update(saved)
    return True


class StateKeeper:
    """Save the simulated account every `interval` seconds from a daemon thread, and once more on stop()."""

    def __init__(self, path: Path, interval: float = 15.0) -> None:
        self.path = path
        self.interval = interval
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="sim-state", daemon=True)

    def start(self) -> None:
        """Begin the periodic saves."""
        self._thread.start()

    def save(self) -> None:
        """Save now (one save at a time)."""
        with self._lock:
            try:
                save_state(self.path)
            except Exception as exc:  # noqa: BLE001 - a failed save must not stop the dev server; say it
                log.warning("simulated AWS: could not save its state to %s: %s", self.path, exc)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.save()

    def stop(self) -> None:
        """Stop the thread and save one last time."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.interval + 5)
        self.save()
