"""Settings, the workspace template catalog and the price table."""
