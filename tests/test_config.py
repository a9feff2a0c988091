from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from logq.broker.config import BrokerConfig
from logq.config import LogConfig

ROOT = Path(__file__).resolve().parents[1]


def test_the_shipped_config_lists_every_setting_with_its_default() -> None:
    settings = tomllib.loads((ROOT / "configs" / "standalone.toml").read_text())["log"]
    assert LogConfig.from_mapping(settings) == LogConfig()
    assert len(settings) == len(LogConfig.__dataclass_fields__)


def test_the_shipped_config_is_the_broker_default() -> None:
    assert BrokerConfig.load(ROOT / "configs" / "standalone.toml") == BrokerConfig()


def test_broker_settings_are_checked_by_name(tmp_path: Path) -> None:
    path = tmp_path / "b.toml"
    path.write_text('[broker]\n"listen.port" = 1\n')
    with pytest.raises(ValueError, match=r"unknown broker setting 'listen\.port'"):
        BrokerConfig.load(path)
    with pytest.raises(ValueError, match="HOST:PORT"):
        BrokerConfig.load(None, {"listen": "nowhere"})
    config = BrokerConfig.load(None, {"listen": "127.0.0.1:19000", "data.dir": "elsewhere"})
    assert (config.listen.port, config.data_dir) == (19000, Path("elsewhere"))


def test_unknown_and_mistyped_settings_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"unknown setting 'retention\.hours'"):
        LogConfig.from_mapping({"retention.hours": 1})
    with pytest.raises(ValueError, match=r"'segment\.bytes' must be an integer"):
        LogConfig.from_mapping({"segment.bytes": "big"})
    with pytest.raises(ValueError, match="true or false"):
        LogConfig.from_mapping({"log.fsync.before.ack": "maybe"})


def test_overrides_replace_only_what_they_name() -> None:
    config = LogConfig().with_overrides({"retention.ms": "1000"})
    assert config.retention_ms == 1000
    assert config.segment_bytes == LogConfig().segment_bytes


def test_broker_settings_are_reported_by_their_file_keys() -> None:
    # DescribeConfigs (resource type BROKER) lists these: the keys an operator writes in the file.
    shipped = tomllib.loads((ROOT / "configs" / "standalone.toml").read_text())
    settings = BrokerConfig().settings()
    in_file = set(shipped["broker"]) | set(shipped["log"])
    assert set(settings) - in_file == {
        "listen",
        "advertised.listener",
        "advertised.listeners",
        "listener.security.protocol.map",
        "inter.broker.listener.name",
        "ssl.certificate.location",
        "ssl.key.location",
        "ssl.ca.location",
        "metrics.listen",
        "zookeeper.connect",
        "inter.broker.sasl.username",
        "inter.broker.sasl.password.file",
        "zookeeper.digest.file",
    }  # commented out
    assert in_file <= set(settings)
    assert settings["advertised.listener"] is None
    assert settings["log.fsync.before.ack"] == "true"
    assert LogConfig.from_mapping({k: settings[k] for k in shipped["log"]}) == LogConfig()


def test_the_secure_example_is_valid_and_names_every_listener_protocol() -> None:
    config = BrokerConfig.load(ROOT / "configs" / "secure.toml")
    listeners = {lst.name: lst.protocol.value for lst in config.listener_set}
    assert listeners == {"CLIENTS": "SASL_SSL", "APPS": "SSL", "LOCAL": "PLAINTEXT"}
    assert config.listener_set.inter_broker.name == "LOCAL"
    assert config.sasl_mechanisms == ("SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN")


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"listeners": "PLAINTEXT:9092"}, "NAME://HOST:PORT"),
        ({"listeners": "CLIENT://127.0.0.1:9093"}, "CLIENT has no security protocol"),
        ({"listeners": "PLAINTEXT://:9092"}, "binds every interface"),
        ({"listeners": "SSL://127.0.0.1:9093"}, "ssl.certificate.location"),
        ({"listeners": "PLAINTEXT://127.0.0.1:1,PLAINTEXT://127.0.0.1:2"}, "may appear once"),
        ({"listener.security.protocol.map": "A:TLS"}, "PROTOCOL one of"),
        ({"advertised.listeners": "OTHER://h:1"}, "not in listeners"),
        ({"inter.broker.listener.name": "NOPE"}, "is not one of the listeners"),
        ({"sasl.enabled.mechanisms": "GSSAPI"}, "unknown SASL mechanism"),
        ({"ssl.client.auth": "always"}, "ssl.client.auth must be one of"),
        ({"ssl.client.auth": "required"}, "needs ssl.ca.location"),
        ({"ssl.principal.mapping.rules": "RULE:broken"}, "mapping.rules"),
        ({"listen": "127.0.0.1:1", "listeners": "PLAINTEXT://127.0.0.1:2"}, "either 'listen'"),
        (
            {"listeners": "SASL_PLAINTEXT://127.0.0.1:1", "zookeeper.connect": "127.0.0.1:2181"},
            "listener SASL_PLAINTEXT is SASL_PLAINTEXT: set inter.broker.sasl.username",
        ),
        (
            {
                "listeners": "SASL_PLAINTEXT://127.0.0.1:1",
                "zookeeper.connect": "127.0.0.1:2181",
                "inter.broker.sasl.username": "broker",
                "sasl.mechanism.inter.broker.protocol": "PLAIN",
            },
            "PLAIN is not in sasl.enabled.mechanisms",
        ),
        (
            {
                "listeners": "SSL://127.0.0.1:1",
                "zookeeper.connect": "127.0.0.1:2181",
                "ssl.certificate.location": "b.pem",
                "ssl.key.location": "k.pem",
            },
            "inter-broker listener SSL is SSL: .* ssl.client.auth must be required",
        ),
    ],
)
def test_inconsistent_listener_and_security_settings_are_refused(
    tmp_path: Path, keys: dict[str, str], message: str
) -> None:
    path = tmp_path / "b.toml"
    path.write_text("[broker]\n" + "".join(f'"{k}" = "{v}"\n' for k, v in keys.items()))
    with pytest.raises(ValueError, match=message):
        BrokerConfig.load(path)


def test_the_listen_flag_replaces_the_files_listeners(tmp_path: Path) -> None:
    path = tmp_path / "b.toml"
    path.write_text('[broker]\n"listeners" = "SASL_PLAINTEXT://127.0.0.1:9094"\n')
    config = BrokerConfig.load(path, {"listen": "127.0.0.1:19000"})
    (listener,) = config.listener_set
    assert (listener.name, listener.protocol.value, listener.bind.port) == ("PLAINTEXT", "PLAINTEXT", 19000)
