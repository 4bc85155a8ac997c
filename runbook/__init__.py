"""runbook: reviewed, tenant-guarded PowerShell runbooks for cross-tenant mailbox migrations."""

__version__ = "0.1.0"
