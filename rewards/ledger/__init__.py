"""The points ledger: append-only entries and balances, points as the endpoints show them, the
invariant check, and points lapsing."""
