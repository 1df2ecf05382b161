"""Service functions shared by views, jobs and the CLI: plain functions, explicit arguments, no Flask."""
