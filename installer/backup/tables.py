"""Per-table row counts and content checksums: what the manifest records, what a restore
compares. One definition for both sides, so that like is always compared with like.

PostgreSQL (computed by the server, in the dump's snapshot)::

    SELECT count(*), coalesce(sum(('x' || substr(md5(t::text), 1, 15))::bit(60)::bigint), 0)
    FROM <schema>.<table> AS t

The checksum is the sum, over the rows, of the first 60 bits of the MD5 of each row's
text form: independent of row order, constant in memory, and ``sum(bigint)`` is
``numeric`` in PostgreSQL, so it never overflows. It is stored as a decimal string.

SQLite (computed here, over a copy): the same sum, of the MD5 of each row's JSON form
(``json.dumps(list(row))``, blobs as hex), with the same 60-bit prefix.

Tables are keyed ``schema.table`` (PostgreSQL; system schemas left out) or ``table``
(SQLite; ``sqlite_*`` internal tables left out).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from installer.backup.archive import TableStats

LIST_TABLES_SQL = (
    "SELECT format('%I.%I', schemaname, tablename), schemaname || '.' || tablename "
    "FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema') "
    "ORDER BY 2"
)


_STATS_SELECT = (
    "SELECT count(*), coalesce(sum(('x' || substr(md5(t::text), 1, 15))::bit(60)::bigint), 0)"
)


def table_stats_sql(quoted_table: str) -> str:
    """The statistics query for one table (``quoted_table`` as ``format('%I.%I')`` gives it)."""
    # quoted_table is quoted by the server's format('%I.%I').
    return f"{_STATS_SELECT} FROM {quoted_table} AS t"


Query = Callable[[str], list[list[str]]]
"""Runs one SQL statement and returns its rows as text columns (a psql session's query)."""


def table_stats(query: Query) -> dict[str, TableStats]:
    """Every user table's row count and checksum, through ``query`` (a live PostgreSQL).

    Run it inside the transaction whose snapshot the dump uses (``backup create``), or on
    a restored database (``restore``, ``backup verify``): the two then compare directly.
    """
    stats: dict[str, TableStats] = {}
    for row in query(LIST_TABLES_SQL):
        quoted, name = row[0], row[1]
        result = query(table_stats_sql(quoted))
        count, checksum = result[0][0], result[0][1]
        stats[name] = TableStats(rows=int(count), checksum=str(int(checksum)))
    return stats


def _row_digest(row: tuple[Any, ...]) -> int:
    values = [v.hex() if isinstance(v, (bytes, memoryview)) else v for v in row]
    text = json.dumps(values, separators=(",", ":"), ensure_ascii=False, default=str)
    return int(hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()[:15], 16)


def sqlite_table_stats(path: Path) -> dict[str, TableStats]:
    """Every table's row count and checksum in the SQLite database at ``path`` (read-only)."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        names = [
            r[0]
            for r in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        stats: dict[str, TableStats] = {}
        for name in names:
            quoted = '"' + name.replace('"', '""') + '"'
            count = 0
            total = 0
            for row in connection.execute(f"SELECT * FROM {quoted}"):  # noqa: S608 - quoted
                count += 1
                total += _row_digest(row)
            stats[name] = TableStats(rows=count, checksum=str(total))
        return stats
    finally:
        connection.close()


def sqlite_integrity(path: Path) -> str:
    """``PRAGMA integrity_check``'s verdict (``ok`` when sound)."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = connection.execute("PRAGMA integrity_check").fetchall()
    finally:
        connection.close()
    return "; ".join(str(r[0]) for r in rows[:5]) or "no answer"
