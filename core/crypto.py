"""Personal data protection: encryption at rest, keyed hashes for uniqueness, masking."""

from __future__ import annotations

import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken
from flask import current_app


def _fernet() -> Fernet:
    return Fernet(current_app.config["PII_ENCRYPTION_KEY"].encode())


def encrypt(value: str) -> str:
    return _fernet().encrypt(value.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as error:  # a wrong key is an operator error, never silently masked
        raise RuntimeError("PII_ENCRYPTION_KEY does not match the stored data") from error


def same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison of a secret a client sent (a code, a MAC) with ours.

    ``compare_digest`` on two str raises TypeError when either holds non-ASCII text, which would be
    a 500 for a mistyped code; compared as UTF-8 bytes, anything a client sends is simply unequal.
    """
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))


def keyed_hash(value: str) -> str:
    """HMAC-SHA256 under PII_HASH_KEY: equal inputs give equal hashes, unguessable without the key."""
    key = current_app.config["PII_HASH_KEY"].encode()
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def mask(value: str, keep_start: int = 4, keep_end: int = 4) -> str:
    if len(value) <= keep_start + keep_end:
        return "*" * len(value)
    return value[:keep_start] + "*" * (len(value) - keep_start - keep_end) + value[-keep_end:]
