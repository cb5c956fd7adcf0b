"""The ops toolkit's deployment package: its size, and how much of it is our code.

Builds the package offline (``spotops package --offline``: Chalice for a bench stage, no AWS)
and reads the zip: total size, and per top-level part (our ``app.py`` and ``chalicelib/``,
Chalice's runtime, ``slack_sdk``) the compressed and unpacked bytes. The goal the package
is held to is under 256 KB of our own code.
"""

from __future__ import annotations

import tempfile
import time
import zipfile
from collections import defaultdict
from pathlib import Path

from spotops.ops_package import offline_site_outputs, write_package
from spotops.push import run_command

ROOT = Path(__file__).resolve().parent.parent
OURS = ("app.py", "chalicelib")
GOAL_OURS_BYTES = 256 * 1024


def main() -> int:
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        written = write_package(
            ROOT,
            app="spotops",
            stage="bench",
            region="us-east-1",
            site_outputs=offline_site_outputs("spotops", "bench"),
            tags={"spotops:app": "spotops", "spotops:stage": "bench"},
            out_dir=Path(out),
            runner=run_command,
        )
        took = time.perf_counter() - started
        zip_path = next(path for path in written if path.suffix == ".zip")
        total = zip_path.stat().st_size
        parts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        with zipfile.ZipFile(zip_path) as archive:
            for info in archive.infolist():
                top = info.filename.split("/", 1)[0]
                key = top if top in OURS else top.split(".", 1)[0]
                parts[key][0] += info.compress_size
                parts[key][1] += info.file_size
    print(f"package  built in {took:.1f} s (chalice package + SAM translation)")
    print(f"package  deployment.zip {total / 1024:.1f} KiB")
    for name, (packed, unpacked) in sorted(parts.items(), key=lambda item: -item[1][0]):
        print(f"package    {name:<24} {packed / 1024:8.1f} KiB packed {unpacked / 1024:8.1f} KiB")
    ours = sum(parts[name][0] for name in OURS)
    verdict = "within" if ours <= GOAL_OURS_BYTES else "OVER"
    print(f"package  our code {ours / 1024:.1f} KiB packed: {verdict} the 256 KiB goal")
    return 0
