"""`kpledger network observer`'s files (node/observer_setup.py) and an observer's node.toml
(node/config.py): what is written, and every refusal with its reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.config import ConfigError, NodeConfig, read_sync_tokens
from node.netinit import InitError, init_network, parse_participants
from node.observer_setup import init_observer

TOKEN = "kpt_" + "a" * 43
OTHER = "kpt_" + "b" * 43


@pytest.fixture
def genesis(tmp_path: Path) -> Path:
    init_network(tmp_path / "net", parse_participants("BE,AE,IN,RU"), base_port=7700)
    return tmp_path / "net" / "genesis.json"


def test_an_observer_is_written_and_loads_as_one(genesis: Path, tmp_path: Path) -> None:
    tokens = tmp_path / "given"
    tokens.write_text(f"https://127.0.0.1:7700 {TOKEN}\n{OTHER}\n")
    peers = ["https://127.0.0.1:7700", "https://127.0.0.1:7701/"]
    made = init_observer(genesis, tmp_path / "obs", peers, port=7900, token_file=tokens)
    assert made.address == "https://127.0.0.1:7900" and made.token_written
    assert made.peers == ("https://127.0.0.1:7700", "https://127.0.0.1:7701")
    config = NodeConfig.load(made.config)
    assert config.observer and config.participant == "observer"
    assert config.encryption_key_path is None and config.authority_key_ref is None
    assert config.sync_tokens == (
        ("https://127.0.0.1:7700", TOKEN),
        ("https://127.0.0.1:7701", OTHER),
    )
    assert TOKEN in config.secrets() and OTHER in config.secrets()
    assert config.node_key().public_bytes == made.node_key
    assert (
        config.genesis().hash == NodeConfig.load(genesis.parent / "BE" / "node.toml").genesis().hash
    )
    config.open_keys()  # no encryption key is asked for
    with pytest.raises(ConfigError, match="holds no encryption key"):
        config.encryption_key()
    with pytest.raises(InitError, match="already holds an observer"):
        init_observer(genesis, tmp_path / "obs", peers)


def test_an_observer_without_its_tokens_does_not_start(genesis: Path, tmp_path: Path) -> None:
    made = init_observer(genesis, tmp_path / "obs", ["https://127.0.0.1:7700"])
    assert not made.token_written
    with pytest.raises(ConfigError, match="kpledger token add --scope sync"):
        NodeConfig.load(made.config)
    (tmp_path / "obs" / "sync.token").write_text(TOKEN + "\n")
    assert NodeConfig.load(made.config).sync_tokens == (("https://127.0.0.1:7700", TOKEN),)


@pytest.mark.parametrize(
    ("peers", "message"),
    [
        (["https://10.0.0.1:7700"], "no peer is a node that genesis lists"),
        (["http://127.0.0.1:7700"], "the network speaks TLS"),
        (["ftp://127.0.0.1:7700"], "not an https:// URL"),
        ([], "at least one"),
        (["https://127.0.0.1:7700", "https://127.0.0.1:7700/"], "names a node twice"),
    ],
)
def test_bad_peers_are_refused_and_nothing_written(
    genesis: Path, tmp_path: Path, peers: list[str], message: str
) -> None:
    with pytest.raises(InitError, match=message):
        init_observer(genesis, tmp_path / "obs", peers)
    assert not (tmp_path / "obs" / "node.toml").exists()
    assert not (tmp_path / "obs" / "node.pem").exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "holds no sync token for https://a:1"),
        (f"{TOKEN}\n{OTHER}\n", "a second token for every peer"),
        (f"https://c:3 {TOKEN}\n", "not one of node.toml's peers"),
        (f"https://a:1 {TOKEN}\nhttps://a:1 {OTHER}\n", "a second token for https://a:1"),
        (f"https://a:1 {TOKEN} extra\n", "a line is `TOKEN` or `URL TOKEN`"),
        ("short\n", "too short"),
        (f"https://a:1 {TOKEN}\n", "holds no sync token for https://b:2"),
    ],
)
def test_a_bad_token_file_is_refused_by_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "sync.token"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        read_sync_tokens(path, ("https://a:1", "https://b:2"))


def test_participant_settings_are_refused_on_an_observer(genesis: Path, tmp_path: Path) -> None:
    made = init_observer(genesis, tmp_path / "obs", ["https://127.0.0.1:7700"])
    (tmp_path / "obs" / "sync.token").write_text(TOKEN + "\n")
    text = made.config.read_text()
    for line in ('participant = "BE"', 'authority_key = "a.pem"', "portal = true"):
        made.config.write_text(text + line + "\n")
        with pytest.raises(ConfigError, match="an observer is no participant"):
            NodeConfig.load(made.config)
    made.config.write_text(text.replace('role = "observer"', 'role = "watcher"'))
    with pytest.raises(ConfigError, match="'role' is 'participant' or 'observer'"):
        NodeConfig.load(made.config)
    participant = genesis.parent / "BE" / "node.toml"
    participant.write_text(participant.read_text() + 'peers = ["https://127.0.0.1:7701"]\n')
    with pytest.raises(ConfigError, match="an observer's settings"):
        NodeConfig.load(participant)
