"""Reading zip archives safely: member count, sizes and names checked before anything is decompressed.

ClinicalTrials.gov's "Download JSON" is a zip of one JSON file per study. An archive is refused
when it holds more members than :data:`MAX_MEMBERS`, when its members add up to more than the
load's file-size limit once decompressed, when one member is larger than :data:`MAX_MEMBER_BYTES`
or compressed more than :data:`MAX_COMPRESSION_RATIO` times (a zip bomb), when it is encrypted,
or when a member name is absolute or climbs out with ``..`` (nothing is ever extracted to disk,
but such a name is a sign of a hostile file). Members are read into memory with a hard cap, so
a member that lies about its size cannot exhaust memory either.
"""

from __future__ import annotations

import zipfile
from pathlib import PurePosixPath

from analytics.importers.report import ImportReport
from analytics.importers.sources import Limits, SourceFile

MAX_MEMBERS = 20_000
MAX_MEMBER_BYTES = 64 * 1024 * 1024
MAX_COMPRESSION_RATIO = 200


def _unsafe_name(name: str) -> bool:
    path = PurePosixPath(name.replace("\\", "/"))
    return path.is_absolute() or ".." in path.parts or (len(name) > 1 and name[1] == ":") or "\x00" in name


def read_members(source: SourceFile, suffix: str, limits: Limits, report: ImportReport) -> list[tuple[str, bytes]] | None:
    """(name, bytes) of every member ending in ``suffix``, in archive order; None (with errors) if unsafe."""
    try:
        archive = zipfile.ZipFile(source.path)
    except (zipfile.BadZipFile, OSError) as exc:
        report.error(source.name, "not a readable zip archive", expected="a .zip file", found=str(exc))
        return None
    with archive:
        infos = [i for i in archive.infolist() if not i.is_dir()]
        problems = 0
        if len(infos) > MAX_MEMBERS:
            report.error(source.name, "the archive holds too many files", expected=f"at most {MAX_MEMBERS:,}",
                         found=f"{len(infos):,} files")
            return None
        total = sum(i.file_size for i in infos)
        if total > limits.max_file_bytes:
            report.error(source.name, "the archive is larger than the import size limit once decompressed",
                         expected=f"at most {limits.max_file_bytes / 1048576:,.1f} MB (raise --max-file-mb)",
                         found=f"{total / 1048576:,.1f} MB")
            return None
        for info in infos:
            name = info.filename
            if _unsafe_name(name):
                report.error(source.name, "archive member name leaves the archive (absolute path or '..'); refused",
                             column=None, expected="relative member names", found=name)
                problems += 1
            elif info.flag_bits & 0x1:
                report.error(source.name, "archive member is encrypted", found=name)
                problems += 1
            elif info.file_size > MAX_MEMBER_BYTES:
                report.error(source.name, "archive member is too large", found=name,
                             expected=f"at most {MAX_MEMBER_BYTES / 1048576:,.0f} MB per file")
                problems += 1
            elif info.compress_size and info.file_size / info.compress_size > MAX_COMPRESSION_RATIO:
                report.error(source.name, "archive member is compressed suspiciously well (a zip bomb?)", found=name,
                             expected=f"a compression ratio below {MAX_COMPRESSION_RATIO}")
                problems += 1
        if problems:
            return None
        members = []
        skipped = [i.filename for i in infos if not i.filename.lower().endswith(suffix)]
        if skipped:
            report.info(source.name, f"{len(skipped)} archive member(s) are not {suffix} files; ignored",
                        found=", ".join(skipped[:5]) + (" ..." if len(skipped) > 5 else ""))
        for info in infos:
            if not info.filename.lower().endswith(suffix):
                continue
            try:
                with archive.open(info) as handle:
                    data = handle.read(info.file_size + 1)
            except (zipfile.BadZipFile, OSError, RuntimeError) as exc:
                report.error(source.name, "archive member could not be read", found=f"{info.filename}: {exc}")
                return None
            if len(data) > info.file_size:
                report.error(source.name, "archive member is larger than its header says; refused", found=info.filename)
                return None
            members.append((info.filename, data))
    if not members:
        report.error(source.name, f"the archive holds no {suffix} files", expected=f"one or more {suffix} members")
        return None
    return members
