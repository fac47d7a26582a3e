"""Sizes as people read them: ``human_size(1536)`` is ``1.5 KiB`` (powers of 1024)."""

from __future__ import annotations


def human_size(size: float) -> str:
    """Bytes below 1 KiB, else KiB, MiB or GiB with one decimal."""
    for unit in ("B", "KiB", "MiB"):
        if abs(size) < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"
