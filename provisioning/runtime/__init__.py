"""The local workspace runtime: the simulated account's instances as bubblewrap sandboxes reached over SSH.

Development and demos only (production workspaces are EC2 instances running sshd). `python -m provisioning.runtime`
runs one asyncssh server on loopback for every local workspace; see README "The local workspace runtime".
"""
