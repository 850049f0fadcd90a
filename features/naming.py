"""Feature column names: ``<family>_<what>_<window>``, safe for any vocabulary."""

from __future__ import annotations

import re


def slugify(text: str, *, max_len: int = 40) -> str:
    """A lower-case ``snake_case`` slug of ``text`` ("Pipeline Run.Succeeded" -> "pipeline_run_succeeded")."""
    slug = re.sub(r"[^0-9a-zA-Z]+", "_", text).strip("_").lower()
    return (slug or "unnamed")[:max_len].rstrip("_")


def unique_slugs(texts: list[str], *, max_len: int = 40) -> list[str]:
    """Slugs of ``texts`` made unique with ``_2``, ``_3``... suffixes, in order."""
    seen: dict[str, int] = {}
    out: list[str] = []
    for text in texts:
        base = slugify(text, max_len=max_len)
        n = seen.get(base, 0) + 1
        seen[base] = n
        out.append(base if n == 1 else f"{base}_{n}")
    return out
