"""SQL text that reads the same on every server, given each server's quoted names."""

from __future__ import annotations


def in_range(col: str, low: bool, high: bool) -> str:
    """``c >= %s`` and/or ``c < %s``: a range of the column's index, in its own collation."""
    parts = ([f"{col} >= %s"] if low else []) + ([f"{col} < %s"] if high else [])
    return " AND ".join(parts)


def summaries(table: str, col: str, where: str, length: int, sums: list[str]) -> str:
    """Per prefix of ``length`` characters: the rows and each of ``sums``."""
    totals = ", ".join(f"SUM({expression})" for expression in sums)
    return (
        f"SELECT LEFT({col}, {int(length)}), COUNT(*), {totals} FROM {table}"
        f" WHERE {where} GROUP BY 1"
    )


def select_where(table: str, col: str, where: str) -> str:
    return f"SELECT {col} FROM {table} WHERE {where}"


def set_mark(table: str, mark: str, value: str, where: str) -> str:
    """Set (or clear, ``value`` NULL) a soft delete's mark on the rows ``where`` says."""
    return f"UPDATE {table} SET {mark} = {value} WHERE {where}"
