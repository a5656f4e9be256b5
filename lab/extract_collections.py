#!/usr/bin/env python3
"""Extract the collections the lab needs from the 'ansible' package on PyPI.

There is no Galaxy server in reach of the lab machines, but the 'ansible' package on PyPI carries every
community collection. This downloads the pinned release (first line of requirements/collections.txt) and
unpacks only the listed collections into DEST/ansible_collections.

usage: extract_collections.py requirements/collections.txt DEST
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path


def read_requirements(path: Path) -> tuple[str, list[str]]:
    """Return the pinned 'ansible' requirement and the collection names listed after it."""
    lines = [line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines()]
    lines = [line for line in lines if line]
    if not lines or not lines[0].startswith("ansible=="):
        raise SystemExit(f"{path}: the first entry must pin the package, e.g. 'ansible==12.3.0'")
    return lines[0], lines[1:]


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    requirement, collections = read_requirements(Path(sys.argv[1]))
    dest = Path(sys.argv[2])
    with tempfile.TemporaryDirectory() as download:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", download, requirement],
            check=True,
        )
        wheel = next(Path(download).glob("ansible-*.whl"))
        prefixes = tuple(f"ansible_collections/{name.replace('.', '/')}/" for name in collections)
        with zipfile.ZipFile(wheel) as archive:
            members = [name for name in archive.namelist() if name.startswith(prefixes)]
            missing = [
                c
                for c, p in zip(collections, prefixes, strict=True)
                if not any(m.startswith(p) for m in members)
            ]
            if missing:
                raise SystemExit(f"{wheel.name} has no collection {', '.join(missing)}")
            archive.extractall(dest, members)
    print(f"extracted {', '.join(collections)} from {requirement} into {dest}/ansible_collections")
    return 0


if __name__ == "__main__":
    sys.exit(main())
