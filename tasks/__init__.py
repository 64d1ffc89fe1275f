"""Prefect tasks: the I/O edge (files, database, Great Expectations, Slack) calling rules."""
