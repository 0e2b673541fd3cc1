"""QR checkpoints of a grid with signed payloads, scans of them on patrol, and the patrol summary
(checkpoints visited and missed).
"""
