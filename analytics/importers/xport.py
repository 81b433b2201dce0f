"""SAS XPORT (v5/v8) file layout: what the headers promise, checked against the bytes on disk.

A transport file is a sequence of 80-byte records: library, member, descriptor and NAMESTR
headers, one 140-byte NAMESTR per variable (its length in the observation), an OBS header, then
the observations back to back, the last record padded with blanks to 80 bytes. Version 8 files
also state the number of observations in the OBS header.

pyreadstat reads a file cut in half without complaint (it returns the rows it found), so the
layout is checked here first: the size must be a whole number of records, the headers must be in
place, the data must be a whole number of observations plus blank padding, a v8 observation count
must match, and the file must hold exactly one dataset. What remains undetectable: a v5 file cut
exactly at an observation boundary that is also a record boundary (for example an observation
length of 80 bytes); the re-import shrink guard (:mod:`analytics.importers.shrink`) covers that.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path

RECORD = 80
NAMESTR = 140
_HEADER = b"HEADER RECORD*******"
_LIBRARY = (b"LIBRARY HEADER RECORD", b"LIBV8   HEADER RECORD")
_MEMBER = (b"MEMBER  HEADER RECORD", b"MEMBV8  HEADER RECORD")
_DESCRIPTOR = (b"DSCRPTR HEADER RECORD", b"DSCPTV8 HEADER RECORD")
_NAMESTR = (b"NAMESTR HEADER RECORD", b"NAMSTV8 HEADER RECORD")
_OBS = (b"OBS     HEADER RECORD", b"OBSV8   HEADER RECORD")


@dataclass(frozen=True)
class XportLayout:
    """The facts of a transport file that its rows can be checked against."""

    version: int  # 5 or 8
    variables: int
    observation_length: int  # bytes per observation
    observations: int  # whole observations in the data section (trailing blank ones included)
    trailing_blank_observations: int  # observations that may be only padding (all blanks, last record)
    declared_observations: int | None  # v8 only

    @property
    def fewest_rows(self) -> int:
        """Rows a reader must return at least (trailing all-blank observations may be padding)."""
        return self.observations - self.trailing_blank_observations


class XportLayoutError(ValueError):
    """The file's bytes do not match its headers; the message says how."""


def _header_at(data: mmap.mmap | bytes, offset: int, kinds: tuple[bytes, ...]) -> int | None:
    """The version (5 or 8) of the header record at ``offset`` if it is one of ``kinds``."""
    record = data[offset:offset + RECORD]
    if not record.startswith(_HEADER):
        return None
    body = record[len(_HEADER):len(_HEADER) + len(kinds[0])]
    for version, kind in zip((5, 8), kinds):
        if body == kind:
            return version
    return None


def read_layout(path: Path) -> XportLayout:
    """Check the layout of the transport file at ``path``; raise :class:`XportLayoutError` if it is broken."""
    size = Path(path).stat().st_size
    if size % RECORD:
        raise XportLayoutError(f"the file ends mid-record: {size:,} bytes is not a whole number of 80-byte records "
                               f"({size % RECORD} bytes over); it was probably cut short")
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return _layout(data, size)


def _layout(data: mmap.mmap, size: int) -> XportLayout:
    expected = [(0, _LIBRARY, "library"), (3 * RECORD, _MEMBER, "member"), (4 * RECORD, _DESCRIPTOR, "descriptor"),
                (7 * RECORD, _NAMESTR, "NAMESTR")]
    version = None
    for offset, kinds, name in expected:
        found = _header_at(data, offset, kinds) if offset + RECORD <= size else None
        if found is None:
            raise XportLayoutError(f"the {name} header record is missing at byte {offset:,}; the record structure "
                                   "does not match SAS XPORT")
        version = version or found
    namestr_header = data[7 * RECORD:8 * RECORD]
    namestr_length = int(data[3 * RECORD + 74:3 * RECORD + 78] or NAMESTR)
    try:
        variables = int(namestr_header[48:58])
    except ValueError:
        raise XportLayoutError("the NAMESTR header does not state the number of variables") from None
    if variables <= 0:
        raise XportLayoutError("the NAMESTR header states no variables")
    start = 8 * RECORD
    if start + variables * namestr_length > size:
        raise XportLayoutError(f"the file ends inside the variable descriptions ({variables} variables declared)")
    lengths = []
    for k in range(variables):
        entry = data[start + k * namestr_length:start + k * namestr_length + 8]
        var_type, _, var_length, _ = struct.unpack(">hhhh", entry)
        if var_type not in (1, 2) or var_length <= 0 or (var_type == 1 and not 2 <= var_length <= 8):
            raise XportLayoutError(f"variable {k + 1} has an impossible description (type {var_type}, length "
                                   f"{var_length}); the record structure does not match SAS XPORT")
        lengths.append(var_length)
    observation_length = sum(lengths)
    # The OBS header follows the descriptions (v8 may put long-label records in between).
    position = start + -(-variables * namestr_length // RECORD) * RECORD
    while position + RECORD <= size and _header_at(data, position, _OBS) is None:
        if not data[position:position + RECORD].startswith(_HEADER):
            raise XportLayoutError(f"no OBS header record after the variable descriptions (byte {position:,})")
        position += RECORD
        while position + RECORD <= size and not data[position:position + RECORD].startswith(_HEADER):
            position += RECORD  # label records of a v8 LABELV8/LABELV9 section
    if position + RECORD > size:
        raise XportLayoutError("the OBS header record is missing; the file ends before its data")
    declared = None
    if version == 8:
        text = data[position + 48:position + 63].strip()
        declared = int(text) if text.isdigit() else None
    first = position + RECORD
    next_member = data.find(_HEADER + _MEMBER[version == 8], first)
    if next_member != -1:
        raise XportLayoutError("the file holds more than one dataset; SDTM expects one dataset per file")
    body = size - first
    observations, rest = divmod(body, observation_length)
    tail = data[size - rest:size]
    if rest >= RECORD or tail.strip(b" "):
        raise XportLayoutError(f"the file ends mid-observation: the data section holds {observations:,} whole "
                               f"observations of {observation_length:,} bytes and {rest:,} bytes of a further one; "
                               "it was probably cut short")
    blank = 0
    padding_start = size - RECORD
    while blank < observations:
        begin = first + (observations - blank - 1) * observation_length
        if begin < padding_start or data[begin:begin + observation_length].strip(b" "):
            break
        blank += 1
    return XportLayout(version, variables, observation_length, observations, blank, declared)
