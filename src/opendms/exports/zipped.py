"""The zip entry an export's text is written into, deflated by ISA-L's igzip.

zlib's fastest level deflates 140 to 200 MB of CSV a second on the bench machine: for a
million rows (50 MB) that is as much CPU as the native client spends on the whole export
(docs/performance.md). igzip writes the same raw deflate stream (every unzip reads it) four
to five times as fast, and its level 1 packs tighter than zlib's level 1. ``zipfile`` builds
the entry's compressor from zlib and takes no other, so the entry it opens has igzip's put
in place of zlib's before anything is written: the headers, the CRC and the sizes remain
``zipfile``'s (tests/unit/exports/test_zipped.py holds that the entry is igzip's stream).
"""

from __future__ import annotations

import zipfile
from typing import IO

from isal import isal_zlib

LEVEL = 1  # igzip's fastest on CSV here, and still a smaller file than zlib's level 1
RAW = -15  # a zip entry holds raw deflate: no zlib header or trailer


def deflated_entry(zf: zipfile.ZipFile, name: str) -> IO[bytes]:
    """``name`` opened for writing in ``zf``, deflated by igzip; zip64 from the start, as
    the size of a result is known only at its end."""
    entry = zf.open(name, "w", force_zip64=True)
    entry._compressor = isal_zlib.compressobj(LEVEL, isal_zlib.DEFLATED, RAW)  # type: ignore[attr-defined]
    return entry
