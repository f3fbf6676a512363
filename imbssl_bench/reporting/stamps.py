"""What a leaderboard plot shows, stamped into its PNG, so that ``leaderboard --check`` can tell
a plot drawn from other numbers from a current one.

The PNG bytes themselves are no good for that: the same figure comes out differently from
another matplotlib, freetype or libpng, so a byte comparison would fail on every machine but
the one that drew the committed plots. The stamp is instead a hash of what is drawn (series,
labels, title) and of a drawing version that the plotting module bumps when it draws the same
data differently; it is stored in the PNG as a tEXt chunk and read back without matplotlib.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

KEY = "imbssl-bench data"  # the tEXt keyword (Latin-1, at most 79 characters)
_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def data_hash(drawing: str, data: Any) -> str:
    """The stamp of `data` (JSON-able, in drawing order) drawn by `drawing` (name and version).

    Examples:
        >>> data_hash("plot v1", {"y": [1, 2]}) == data_hash("plot v1", {"y": [1, 2]})
        True
        >>> data_hash("plot v1", {"y": [1, 2]}) == data_hash("plot v2", {"y": [1, 2]})
        False
    """
    text = json.dumps([drawing, data], ensure_ascii=False, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def png_metadata(drawing: str, data: Any) -> dict[str, str | None]:
    """`savefig`'s metadata for a PNG of `data`: the stamp, and no matplotlib version."""
    return {"Software": None, KEY: data_hash(drawing, data)}


def read_stamp(path: Path) -> str | None:
    """The stamp stored in the PNG at `path`; None when it is not a PNG or has none."""
    png = Path(path).read_bytes()
    if not png.startswith(_SIGNATURE):
        return None
    pos = len(_SIGNATURE)
    while pos + 8 <= len(png):  # chunks: length, type, data, CRC
        length = int.from_bytes(png[pos : pos + 4], "big")
        kind, body = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        keyword, _, text = body.partition(b"\0")
        if kind == b"tEXt" and keyword == KEY.encode("latin-1"):
            return text.decode("latin-1")
        pos += 12 + length
    return None
