"""Tollgate's controller: Event Socket, call flow, Redis store and the CLI."""
