"""Push benchmark for channel ``fcm`` (bench/push_vendor.py says what is measured and how;
bench/notifications.py measures FCM against firebase-admin alone).

Usage (from the repository root)::

    .venv/bin/python bench/push_fcm.py --messages 2000 [--latency-ms 0]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from push_vendor import main  # bench/ is the script directory

if __name__ == "__main__":
    sys.exit(main("fcm"))
