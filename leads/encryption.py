"""Encryption at rest for the workspace's API key (Fernet, keyed from SECRET_KEY).

The Fernet key is derived from SECRET_KEY with HKDF, so the database alone
never opens the workspace. Decryption also tries SECRET_KEY_FALLBACKS
(MultiFernet), so rotating SECRET_KEY the Django way keeps the key readable.
"""

from __future__ import annotations

import base64
import functools

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.views.decorators.debug import sensitive_variables

# Fixed context for the derivation: a key derived for this purpose is useless
# for anything else Django signs with SECRET_KEY.
_HKDF_SALT = b"leadsite.workspace"
_HKDF_INFO = b"pollybot-api-key-encryption"


class Undecryptable(Exception):
    """The stored value was made with a SECRET_KEY that is no longer configured."""


@functools.lru_cache(maxsize=8)
def _fernet(secret: str) -> Fernet:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=_HKDF_SALT, info=_HKDF_INFO).derive(
        secret.encode()
    )
    return Fernet(base64.urlsafe_b64encode(derived))


@sensitive_variables("secret_key", "fallbacks")
def _keys(secret_key: str, fallbacks: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([_fernet(secret) for secret in (secret_key, *fallbacks)])


def _secrets() -> tuple[str, tuple[str, ...]]:
    return settings.SECRET_KEY, tuple(getattr(settings, "SECRET_KEY_FALLBACKS", []))


def encrypt(plaintext: str) -> str:
    """A token for the database, made with the current SECRET_KEY."""
    return _keys(*_secrets()).encrypt(plaintext.encode()).decode("ascii")


def decrypt(token: str) -> str:
    """The plaintext; Undecryptable when no configured SECRET_KEY opens it."""
    return _decrypt(token, *_secrets())


# Every lead page needs the workspace key: the last few answers are kept, keyed
# by the token and the secrets that opened it (the plaintext is held by the
# pooled PollyBot client in any case). Failures are not kept.
@functools.lru_cache(maxsize=4)
@sensitive_variables("secret_key", "fallbacks")
def _decrypt(token: str, secret_key: str, fallbacks: tuple[str, ...]) -> str:
    try:
        return _keys(secret_key, fallbacks).decrypt(token.encode("ascii")).decode()
    except (InvalidToken, UnicodeError, ValueError) as error:
        raise Undecryptable("the stored value cannot be decrypted with SECRET_KEY") from error


def needs_rotation(token: str) -> bool:
    """True when the token opens only with a fallback key (re-save to re-encrypt)."""
    try:
        _fernet(settings.SECRET_KEY).decrypt(token.encode("ascii"))
    except (InvalidToken, UnicodeError, ValueError):
        return True
    return False
