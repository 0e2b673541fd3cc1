"""Users, login, token refresh with rotation and families, revocation, roles and the audit log."""
