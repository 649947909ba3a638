"""Redis connection options and client construction, with secrets kept out of logs."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import redis


@dataclass(frozen=True)
class RedisOptions:
    """How to reach Redis. `password` is never shown by repr() or in error messages."""

    url: str
    username: str = ""
    password: str = field(default="", repr=False)
    tls_ca_file: str = ""
    tls_cert_file: str = ""
    tls_key_file: str = ""
    tls_verify: bool = True
    socket_timeout_s: float = 5.0

    @property
    def display_url(self) -> str:
        """The URL with any password replaced by ``***``."""
        return redact(self.url)

    def client(self) -> redis.Redis:
        """A new redis-py client (connections are made lazily, on first command)."""
        kwargs: dict[str, object] = {
            "socket_timeout": self.socket_timeout_s,
            "socket_connect_timeout": self.socket_timeout_s,
            "health_check_interval": 30,
        }
        if self.username:
            kwargs["username"] = self.username
        if self.password:
            kwargs["password"] = self.password
        if self.url.startswith("rediss://"):
            if self.tls_ca_file:
                kwargs["ssl_ca_certs"] = self.tls_ca_file
            if self.tls_cert_file:
                kwargs["ssl_certfile"] = self.tls_cert_file
            if self.tls_key_file:
                kwargs["ssl_keyfile"] = self.tls_key_file
            if not self.tls_verify:
                kwargs["ssl_cert_reqs"] = "none"
        return redis.Redis.from_url(self.url, **kwargs)


# Greedy up to the last '@' of the URL token: passwords may contain '@' and '/'.
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z+]+://)(?P<user>[^:@/\s]*):(?P<pw>\S*)@")


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """`text` with URL passwords and any of `secrets` replaced by ``***``."""
    out = _URL_PASSWORD.sub(lambda m: f"{m.group('scheme')}{m.group('user')}:***@", text)
    for secret in secrets:
        if secret:
            out = out.replace(secret, "***")
    return out
