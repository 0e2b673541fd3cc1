"""Vendor push benchmark for channel ``honor`` (bench/push_vendor.py explains what is measured).

Usage (from the repository root)::

    .venv/bin/python bench/push_honor.py [--messages 2000]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from push_vendor import run

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=2000, help="due notifications, one device each")
    sys.exit(run("honor", parser.parse_args().messages))
