"""Tables for people, JSON for scripts."""

from __future__ import annotations

import json
from typing import Any, Iterable, Sequence

import click


def emit_json(obj: Any) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, sort_keys=True, indent=None))


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    rows = [["" if v is None else str(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in rows:
        for i, v in enumerate(row):
            widths[i] = max(widths[i], len(v))
    line = "  ".join(h.upper().ljust(widths[i]) for i, h in enumerate(headers))
    click.echo(line.rstrip())
    for row in rows:
        click.echo("  ".join(v.ljust(widths[i]) for i, v in enumerate(row)).rstrip())
    if not rows:
        click.echo("(none)")


def pairs(mapping: dict[str, Any]) -> None:
    width = max((len(k) for k in mapping), default=0)
    for k, v in mapping.items():
        click.echo(f"{k.ljust(width)}  {v}")
