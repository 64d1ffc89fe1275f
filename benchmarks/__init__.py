"""Benchmarks: a national-scale night, a million open contacts and an alert burst (`make bench`)."""
