import json

import pytest

from components.engine.settings import parse_endpoint, settings_from_config
from components.model.connection import ConfigError, TencentCredentials


def getter(table):
    return lambda key: table.get(key)


def test_endpoints_accept_sandbox_and_urls():
    settings = settings_from_config(getter({"cdn-prefetch:endpoints": json.dumps(
        {"edgeone": "sandbox", "tencent-cdn": "http://127.0.0.1:8787", "ucloud": "https://api.ucloud.cn"})}), {})
    assert settings.endpoint("edgeone").kind == "sandbox"
    assert (settings.endpoint("tencent-cdn").scheme, settings.endpoint("tencent-cdn").netloc) == ("http", "127.0.0.1:8787")
    assert settings.endpoint("ucloud").url == "https://api.ucloud.cn"


def test_no_endpoint_means_the_real_cloud():
    assert settings_from_config(getter({}), {}).endpoint("edgeone").kind == "default"


@pytest.mark.parametrize("table, words", [
    ({"cdn-prefetch:endpoints": json.dumps({"akamai": "sandbox"})}, "unknown cloud 'akamai'"),
    ({"cdn-prefetch:endpoints": json.dumps({"edgeone": "ftp://x"})}, "cdn-prefetch:endpoints.edgeone"),
    ({"cdn-prefetch:endpoints": json.dumps({"edgeone": "http://h:1/some/path"})}, "scheme, host and port only"),
    ({"cdn-prefetch:endpoints": "[1, 2]"}, "must be a map"),
    ({"tencentcloud:secretId": "id-only"}, "secretKey is missing"),
])
def test_config_mistakes_name_the_key_and_the_fix(table, words):
    with pytest.raises(ConfigError, match=words):
        settings_from_config(getter(table), {})


def test_credentials_from_config_win_over_environment():
    settings = settings_from_config(getter({"tencentcloud:secretId": "cfg-id", "tencentcloud:secretKey": "cfg-key"}),
                                    {"TENCENTCLOUD_SECRET_ID": "env-id", "TENCENTCLOUD_SECRET_KEY": "env-key"})
    assert (settings.credentials_for("tencentcloud").secret_id, settings.credentials_for("tencentcloud").source) == ("cfg-id", "config")


def test_credentials_fall_back_to_environment():
    settings = settings_from_config(getter({}), {"TENCENTCLOUD_SECRET_ID": "env-id", "TENCENTCLOUD_SECRET_KEY": "env-key",
                                                 "TENCENTCLOUD_SECURITY_TOKEN": "tok"})
    assert (settings.credentials_for("tencentcloud").secret_id, settings.credentials_for("tencentcloud").token, settings.credentials_for("tencentcloud").source) == ("env-id", "tok", "environment")


def test_secret_parts_never_show_in_repr():
    creds = TencentCredentials("visible-id", "very-secret-key", "very-secret-token")
    assert "very-secret" not in repr(creds) and "visible-id" in repr(creds)


def test_bare_host_port_is_https():
    assert parse_endpoint("k", "teo.intl.tencentcloudapi.com").url == "https://teo.intl.tencentcloudapi.com"


@pytest.mark.parametrize("value, share", [(None, None), ("", None), ("0.25", 0.25), ("1", 1.0), ("5", 5.0)])
def test_rate_share_is_a_fraction_or_requests_per_second_and_unset_by_default(value, share):
    table = {} if value is None else {"cdn-prefetch:rateShare": value}
    assert settings_from_config(getter(table), {}).rate_share == share


@pytest.mark.parametrize("value", ["0", "-1", "half", "nan", "inf"])
def test_a_wrong_rate_share_names_the_key_and_what_it_takes(value):
    with pytest.raises(ConfigError, match="cdn-prefetch:rateShare must be a fraction"):
        settings_from_config(getter({"cdn-prefetch:rateShare": value}), {})


def test_the_rate_share_reaches_the_process_limiters_when_an_adapter_is_built():
    from components.clouds import ucloud
    from components.clouds.factory import adapter_for
    from components.clouds.ratelimit import TENCENT_LIMITER, set_rate_share

    settings = settings_from_config(getter({"cdn-prefetch:rateShare": "0.25", "cdn-prefetch:endpoints": json.dumps(
        {"edgeone": "http://127.0.0.1:9"}), "tencentcloud:secretId": "i", "tencentcloud:secretKey": "k"}), {})
    try:
        adapter_for({"provider": "edgeone", "zone": "zone-a"}, settings)
        assert TENCENT_LIMITER.rate(("edgeone", "CreatePrefetchTask")) == 5  # a quarter of 20/s
        assert ucloud.CALL_LIMITER.rate(("ucloud", "k", "x")) == 5  # every process-wide limiter
    finally:
        set_rate_share(None)
    assert TENCENT_LIMITER.rate(("edgeone", "CreatePrefetchTask")) == 20
