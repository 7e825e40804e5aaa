"""Front-door helpers for the CLI commands that run a loop."""
