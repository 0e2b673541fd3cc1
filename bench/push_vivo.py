"""vivo push benchmark: see bench/push_ov.py (`.venv/bin/python bench/push_vivo.py [--count 10000]`)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from push_ov import main  # bench/ is the script directory

if __name__ == "__main__":
    sys.exit(main("vivo"))
