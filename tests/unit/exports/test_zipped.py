"""The zip entry an export writes: igzip's deflate stream inside zipfile's headers."""

from __future__ import annotations

import io
import zipfile
import zlib

from isal import isal_zlib

from opendms.exports.zipped import LEVEL, RAW, deflated_entry

TEXT = b"".join(
    b'%d,%d,"name-%d",%d.%02d\n' % (i, i % 100, i, i // 7, i % 100) for i in range(50_000)
)


def _packed(packer: zlib._Compress | isal_zlib.Compress) -> int:
    return len(packer.compress(TEXT) + packer.flush())


def test_the_entry_is_deflated_by_igzip_and_reads_back_whole() -> None:
    out = io.BytesIO()
    with (
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf,
        deflated_entry(zf, "ticket-1.csv") as entry,
    ):
        entry.write(TEXT)
    with zipfile.ZipFile(out) as zf:
        (info,) = zf.infolist()
        assert zf.read("ticket-1.csv") == TEXT  # zipfile checks the CRC as it reads
    assert (info.compress_type, info.file_size) == (zipfile.ZIP_DEFLATED, len(TEXT))
    # igzip's stream, not one of zlib's (which zipfile would quietly keep if its entry no
    # longer took the swap): the three streams' sizes differ
    igzip = _packed(isal_zlib.compressobj(LEVEL, isal_zlib.DEFLATED, RAW))
    zlibs = {_packed(zlib.compressobj(level, zlib.DEFLATED, RAW)) for level in (1, 6)}
    assert igzip not in zlibs
    assert info.compress_size == igzip
