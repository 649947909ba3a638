"""RedisOptions: the client keyword arguments and cluster seeds both client kinds share
(the daemon's sync clients and the viewer's asyncio ones)."""

from __future__ import annotations

import pytest

from sinks.redis_connection import RedisOptions


def test_cluster_url_gives_its_seeds_and_its_own_credentials_unquoted() -> None:
    options = RedisOptions(url="rediss+cluster://ops:p%40ss@10.0.0.1:7000,[::1]:7001/0",
                           tls_ca_file="/etc/ca.pem", tls_verify=False)
    assert options.cluster_seeds() == [("10.0.0.1", 7000), ("::1", 7001)]
    kwargs = options.client_kwargs()
    assert kwargs["username"] == "ops" and kwargs["password"] == "p@ss"
    assert kwargs["ssl"] is True
    assert kwargs["ssl_ca_certs"] == "/etc/ca.pem" and kwargs["ssl_cert_reqs"] == "none"


def test_configured_credentials_win_over_the_urls() -> None:
    options = RedisOptions(url="redis+cluster://u:url-pw@h:7000", username="cfg",
                           password="cfg-pw")
    kwargs = options.client_kwargs()
    assert (kwargs["username"], kwargs["password"]) == ("cfg", "cfg-pw")
    assert "ssl" not in kwargs and "ssl_ca_certs" not in kwargs


def test_single_server_tls_options_only_for_rediss_and_timeout_override() -> None:
    plain = RedisOptions(url="redis://h:6379/0", tls_ca_file="/ca.pem", socket_timeout_s=2.0)
    assert "ssl_ca_certs" not in plain.client_kwargs()
    assert plain.client_kwargs()["socket_timeout"] == 2.0
    assert plain.client_kwargs(socket_timeout_s=10.0)["socket_timeout"] == 10.0
    assert plain.client_kwargs(socket_timeout_s=10.0)["socket_connect_timeout"] == 2.0
    tls = RedisOptions(url="rediss://h:6380/0", tls_cert_file="/c.pem", tls_key_file="/k.pem")
    kwargs = tls.client_kwargs()
    assert kwargs["ssl_certfile"] == "/c.pem" and kwargs["ssl_keyfile"] == "/k.pem"
    assert "ssl" not in kwargs  # from_url turns TLS on for rediss://
    assert "password" not in kwargs  # from_url reads a single server URL's own credentials


@pytest.mark.parametrize("url", ["redis+cluster://", "redis+cluster://h", "redis+cluster://h:x"])
def test_cluster_url_without_usable_seeds_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        RedisOptions(url=url).cluster_seeds()
