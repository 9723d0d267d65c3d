"""Reading a blueprint's files from a folder or a .zip, safely and all at once."""
import zipfile
from pathlib import Path, PurePosixPath

MAX_FILE_BYTES = 50 * 1024 * 1024
MAX_TOTAL_BYTES = 500 * 1024 * 1024
WANTED = ("blueprint.json", "people.json", "forms/", "rules/", "reports/", "dashboards/", "demo/")


class SourceError(Exception):
    pass


def read(path):
    """{relative posix path: bytes} for every file of a blueprint folder or zip."""
    path = Path(path)
    if path.is_dir():
        files = {p.relative_to(path).as_posix(): p for p in sorted(path.rglob("*")) if p.is_file()}
        out, total = {}, 0
        for name, p in files.items():
            if not _wanted(name):
                continue
            size = p.stat().st_size
            total += size
            if size > MAX_FILE_BYTES or total > MAX_TOTAL_BYTES:
                raise SourceError(f"{name}: too large")
            out[name] = p.read_bytes()
        return out
    if path.is_file() and zipfile.is_zipfile(path):
        return _read_zip(path)
    raise SourceError(f"{path}: not a blueprint folder or .zip file")


def _read_zip(path):
    out, total = {}, 0
    with zipfile.ZipFile(path) as zf:
        names = [i for i in zf.infolist() if not i.is_dir()]
        # A zip may wrap everything in one top folder; strip it.
        roots = {PurePosixPath(i.filename).parts[0] for i in names}
        strip = len(roots) == 1 and not any(i.filename == "blueprint.json" for i in names)
        for info in names:
            parts = PurePosixPath(info.filename).parts
            if info.filename.startswith("/") or ".." in parts:
                raise SourceError(f"{info.filename}: unsafe path in archive")
            name = "/".join(parts[1:] if strip else parts)
            if not _wanted(name):
                continue
            total += info.file_size
            if info.file_size > MAX_FILE_BYTES or total > MAX_TOTAL_BYTES:
                raise SourceError(f"{name}: too large")
            out[name] = zf.read(info)
    return out


def _wanted(name):
    return any(name == w or (w.endswith("/") and name.startswith(w)) for w in WANTED)
