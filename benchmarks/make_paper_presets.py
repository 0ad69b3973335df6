"""Write the SSKT paper's presets into resources/presets/paper/ from sskt_engine/paper_presets.py.

    .venv/bin/python benchmarks/make_paper_presets.py          # (re)write them
    .venv/bin/python benchmarks/make_paper_presets.py --check  # exit 1 if a shipped file differs

tests/test_paper_presets.py runs the same comparison, so a hand edit of a generated file fails CI.
Files in the folder that this script does not generate (another helper's video presets) are left alone.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sskt_engine.paper_presets import PRESET_FOLDER, paper_presets  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()
    folder = ROOT / "resources" / Path(*PRESET_FOLDER)
    folder.mkdir(parents=True, exist_ok=True)
    stale = []
    for name, text in paper_presets().items():
        path = folder / name
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print(f"{len(stale)} paper preset(s) differ from the generator: {', '.join(stale)}")
        return 1
    print(f"{len(paper_presets())} paper presets {'match' if args.check else 'written to'} {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
