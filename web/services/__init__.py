"""Use cases. Each public write owns its transaction (commit on success, roll back on any
error) and takes the acting user explicitly, so the API, the CLI and the scheduler call them
alike. Nothing here imports Flask."""
