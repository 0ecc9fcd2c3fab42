"""Small text helpers shared by the data layer: SQL quoting and one-line message excerpts."""

from __future__ import annotations

__all__ = ["SHOWN_CHARS", "one_line", "quote_identifier", "sql_string_literal"]

#: How much of a statement or value an error message quotes by default.
SHOWN_CHARS = 300


def one_line(text: str, limit: int = SHOWN_CHARS) -> str:
    """``text`` on one line (runs of whitespace become one space), cut to ``limit`` chars.

    A cut text ends with ``...`` and is still at most ``limit`` characters long.
    """
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    return flat[: max(limit - 3, 0)] + "..."


def quote_identifier(name: str) -> str:
    """Quote ``name`` as a SQL identifier: double quotes, embedded ones doubled (``a"b``)."""
    return '"' + name.replace('"', '""') + '"'


def sql_string_literal(text: str) -> str:
    """Quote ``text`` as a SQL string literal: single quotes, embedded ones doubled."""
    return "'" + text.replace("'", "''") + "'"
