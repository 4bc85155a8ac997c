"""Running a reviewed runbook: the manifest's steps, a journal to resume from, the transports."""
