"""The ZIP layout of a case file, written and checked here byte for byte: stored (no compression), fixed times
and attributes, so that `verify()` can rebuild the exact bytes from the contents and the manifest."""
from __future__ import annotations

import hashlib
import struct
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime

_LOCAL, _CENTRAL, _END = 0x04034B50, 0x02014B50, 0x06054B50
_LOCAL_FMT, _CENTRAL_FMT, _END_FMT = "<IHHHHHIIIHH", "<IHHHHHHIIIHHHHHII", "<IHHHHIIH"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _dos_time(at: datetime) -> tuple[int, int]:
    at = at.astimezone(UTC)
    year = min(max(at.year, 1980), 2107)
    return (at.hour << 11) | (at.minute << 5) | (at.second // 2), ((year - 1980) << 9) | (at.month << 5) | at.day


@dataclass
class Region:
    start: int
    end: int
    name: str
    what: str  # "header" | "content" | "directory entry" | "end record"


def write_zip(entries: list[tuple[str, bytes]], when: datetime) -> tuple[bytes, list[Region]]:
    """A stored (uncompressed) ZIP of the entries in this order, and where each part lies."""
    if len(entries) >= 0xFFFF:
        raise ValueError("too many files for one archive")
    dos_t, dos_d = _dos_time(when)
    out = bytearray()
    regions: list[Region] = []
    central = bytearray()
    for name, data in entries:
        raw_name = name.encode()
        flags = 0x800 if not name.isascii() else 0  # UTF-8 names
        crc = zlib.crc32(data) & 0xFFFFFFFF
        if len(out) + len(data) > 0xFFFFFFF0:
            raise ValueError("archive larger than 4 GiB")
        offset = len(out)
        out += struct.pack(_LOCAL_FMT, _LOCAL, 20, flags, 0, dos_t, dos_d, crc, len(data), len(data), len(raw_name), 0)
        out += raw_name
        regions.append(Region(offset, len(out), name, "header"))
        out += data
        regions.append(Region(len(out) - len(data), len(out), name, "content"))
        central_start = len(central)
        central += struct.pack(_CENTRAL_FMT, _CENTRAL, (3 << 8) | 20, 20, flags, 0, dos_t, dos_d, crc, len(data),
                               len(data), len(raw_name), 0, 0, 0, 0, (0o100644 << 16), offset)
        central += raw_name
        regions.append(Region(central_start, len(central), name, "directory entry"))  # relative; shifted below
    cd_offset = len(out)
    for r in regions:
        if r.what == "directory entry":
            r.start += cd_offset
            r.end += cd_offset
    out += central
    end_start = len(out)
    out += struct.pack(_END_FMT, _END, 0, 0, len(entries), len(entries), len(central), cd_offset, 0)
    regions.append(Region(end_start, len(out), "", "end record"))
    return bytes(out), regions


def _by_directory(data: bytes) -> list[tuple[str, bytes]] | None:
    """The entries through the central directory (as `write_zip` lays it out: no comment, no extras)."""
    end = struct.calcsize(_END_FMT)
    if len(data) < end:
        return None
    sig, _, _, _, count, cd_size, cd_offset, _ = struct.unpack_from(_END_FMT, data, len(data) - end)
    if sig != _END or cd_offset + cd_size != len(data) - end:
        return None
    out, pos, size = [], cd_offset, struct.calcsize(_CENTRAL_FMT)
    for _ in range(count):
        if pos + size > len(data):
            return None
        f = struct.unpack_from(_CENTRAL_FMT, data, pos)
        if f[0] != _CENTRAL:
            return None
        n_name, n_extra, n_comment, csize, offset = f[10], f[11], f[12], f[8], f[16]
        raw_name = data[pos + size:pos + size + n_name]
        body = offset + struct.calcsize(_LOCAL_FMT) + n_name  # the local name has the same length
        out.append((raw_name.decode("utf-8", errors="replace"), data[body:body + csize]))
        pos += size + n_name + n_extra + n_comment
    return out


def _by_headers(data: bytes) -> list[tuple[str, bytes]]:
    """The entries walking the local headers from the start (when the directory is damaged)."""
    out: list[tuple[str, bytes]] = []
    pos, size = 0, struct.calcsize(_LOCAL_FMT)
    while pos + size <= len(data):
        fields = struct.unpack_from(_LOCAL_FMT, data, pos)
        if fields[0] != _LOCAL:
            break
        n_name, n_extra, csize = fields[9], fields[10], fields[7]
        start = pos + size
        name = data[start:start + n_name].decode("utf-8", errors="replace")
        body = start + n_name + n_extra
        out.append((name, data[body:body + csize]))
        pos = body + csize
    return out


def read_entries(data: bytes) -> list[tuple[str, bytes]]:
    """The entries in archive order: through the central directory, else walking the local headers, else
    with the standard library (any ZIP). A damaged size or name gives a wrong entry, which the manifest
    then names; a damaged header or directory byte is named by the comparison with the sealed layout."""
    for way in (_by_directory, _by_headers):
        found = way(data)
        if found:
            return found
    import io
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return [(i.filename, zf.read(i)) for i in zf.infolist()]
    except (zipfile.BadZipFile, OSError, ValueError, zlib.error, KeyError):
        return []
