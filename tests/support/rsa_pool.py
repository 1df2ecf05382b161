"""RSA keys for the tests, generated once per test process and handed out again in each test.

A 2048-bit RSA key costs 0.03–0.8 s of CPU to generate (0.27 s on average on this shared two-core machine), and a
test with an LTI launch makes three: the platform's key and the tool's current and next signing keys. The suite's
few hundred launches spent minutes generating keys. `KeyPool.generate_private_key` stands in for
`cryptography`'s `rsa.generate_private_key` during a test (tests/conftest.py): the n-th key a test asks for is the
process's n-th key, generated the first time any test asks for that many. So every key within one test is distinct
(a forged token's key is never the platform's, a rotated key never the one it replaces), each is a real RSA key
used for real signing and verification, and only a handful are ever generated per process. Any other exponent or
size goes to the real function.
"""

from __future__ import annotations

import threading
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

_REAL_GENERATE = rsa.generate_private_key


class KeyPool:
    """The process's keys, in the order tests first needed them, and the position within the current test."""

    def __init__(self) -> None:
        self.keys: list[rsa.RSAPrivateKey] = []
        self.cursor = 0
        self.generated = 0
        self._lock = threading.Lock()  # the app's threads, the Demo LMS and moto's server ask too

    def start_test(self) -> None:
        """Hand out keys from the first again."""
        self.cursor = 0

    def generate_private_key(self, public_exponent: int, key_size: int, backend: Any = None) -> rsa.RSAPrivateKey:
        """The test's next key: distinct from every key it got before."""
        if (public_exponent, key_size) != (65537, 2048):
            return _REAL_GENERATE(public_exponent=public_exponent, key_size=key_size)
        with self._lock:
            if self.cursor == len(self.keys):
                self.keys.append(_REAL_GENERATE(public_exponent=public_exponent, key_size=key_size))
                self.generated += 1
            key = self.keys[self.cursor]
            self.cursor += 1
            return key
