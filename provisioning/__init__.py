"""Cloud workspaces: the CloudBackend port, the AWS adapter, lifecycle and metering (issues 3 and 4)."""
