"""The rewards catalogue: items a subtree's volunteers redeem points for."""
