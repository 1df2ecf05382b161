"""Record a debug session's channel in asciinema v2 format: the one format spec lives in the agent bundle
(provisioning/agent/cwc_cast.py, stdlib only) so the runtime and the EC2 recorder write the same files.

The runtime's SSH server tees what the staff member types ("i") and what the session shows ("o") into the file
as it happens, each chunk with its time since the start. `parse_cast` reads a file back (the replay page).
"""

from __future__ import annotations

from provisioning.agent.cwc_cast import CAST_TYPE, Cast, CastRecorder, parse_cast

__all__ = ["CAST_TYPE", "Cast", "CastRecorder", "parse_cast"]
