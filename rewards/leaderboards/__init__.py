"""Leaderboards: who served most hours or earned most points, and the per-period totals they read."""
