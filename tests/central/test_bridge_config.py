"""``broker-config --bridge``: what the registry's [[bridges]] rows must be, and what is written where.

The brokers run from this output in tests/central/test_bridge.py; here, the files and the refusals.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from registry import agent_row, broker_config_cli

from central import broker_config
from central.broker_bridge import AGENT_WRITES, BridgeAccount, connection_text
from contract import ROOT

SECRET = "bridge-secret-never-shown"
FILE_SECRET = "file-secret-never-shown"


AGENTS = [("school-a", "room-101", "pw-101"), ("school-a", "room-102", "pw-102"), ("school-b", "room-201", "pw-201")]
SCHOOL = (
    "".join(agent_row(*row) for row in AGENTS)
    + f"""
[[bridges]]
name = "bridge-school-a"
site = "school-a"
agents = ["room-101", "room-102"]
password = "{SECRET}"
district = "mqtts://district.example.cn"
cafile = "district-ca.crt"
"""
)


def test_the_school_side_writes_a_private_connection_for_its_site_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "district-ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    (tmp_path / "school.toml").write_text(SCHOOL)
    out = tmp_path / "out"
    assert broker_config_cli("--registry", tmp_path / "school.toml", "--bridge", "bridge-school-a", "--out", out) == 0
    printed = capsys.readouterr()
    assert printed.out.split() == [str(out / name) for name in ("mosquitto.passwd", "mosquitto.acl", "mosquitto.conf")]
    assert SECRET not in printed.out + printed.err

    conf = (out / broker_config.CONF_FILE).read_text().splitlines()
    assert f"remote_password {SECRET}" in conf
    assert f"autosave_interval {broker_config.AUTOSAVE_S}" in conf  # its queue reaches the disk within seconds
    assert stat.S_IMODE((out / broker_config.CONF_FILE).stat().st_mode) & 0o007 == 0  # nobody else reads it
    bridge = conf[conf.index("connection bridge-school-a") :]  # the connection block comes last
    assert "address district.example.cn:8883" in bridge
    assert f"bridge_cafile {tmp_path / 'district-ca.crt'}" in bridge  # relative to the registry's folder
    assert {
        "cleansession false",
        "try_private true",
        "bridge_insecure false",
        "remote_clientid bridge-school-a",
    } <= set(bridge)
    topics = [line.split() for line in bridge if line.startswith("topic ")]
    # Out: the site's rooms, whatever they publish (telemetry at its contract QoS 0); in: their commands and the
    # signalling addressed to them.  Nothing of school-b, whose room shares this broker.
    assert [t[1:] for t in topics if t[2] == "out"] == [
        [f"{ROOT}/school-a/+/{kind}", "out", "0" if kind == "telemetry" else "1"]
        for kind in ("status", "info", "state/#", "telemetry", "event", "reply", "rtc/#")
    ]
    assert [t[1] for t in topics if t[2] == "in"] == [
        f"{ROOT}/school-a/+/cmd/#",
        f"{ROOT}/+/+/rtc/room-101",
        f"{ROOT}/+/+/rtc/room-102",
    ]
    # The bridge has no account on the school's own broker.
    assert "bridge-school-a" not in (out / broker_config.PASSWORD_FILE).read_text()
    assert "user bridge-school-a" not in (out / broker_config.ACL_FILE).read_text()


def test_the_district_side_gives_the_bridge_its_rooms_rights(tmp_path: Path) -> None:
    (tmp_path / "bridge.secret").write_text(FILE_SECRET + "\nsecond line ignored\n")
    district = """
[[users]]
name = "central"
password = "pw-central"
role = "central"

[[bridges]]
name = "bridge-school-a"
site = "school-a"
agents = ["room-101"]
password_file = "bridge.secret"
"""
    (tmp_path / "district.toml").write_text(district)
    out = tmp_path / "out"
    assert broker_config_cli("--registry", tmp_path / "district.toml", "--out", out) == 0
    acl = (out / broker_config.ACL_FILE).read_text()
    block = acl[acl.index("user bridge-school-a") :].strip().splitlines()
    assert block == [
        "user bridge-school-a",
        "topic write $SYS/broker/connection/bridge-school-a/state",
        *(f"topic write {ROOT}/school-a/room-101/{kind}" for kind in AGENT_WRITES),
        f"topic read {ROOT}/school-a/room-101/cmd/#",
        f"topic read {ROOT}/+/+/rtc/room-101",
    ]
    assert "topic read $SYS/broker/connection/+/state" in acl.split("user central")[1]  # technicians see bridges
    passwd = (out / broker_config.PASSWORD_FILE).read_text()
    assert passwd.count("bridge-school-a:") == 1 and FILE_SECRET not in passwd  # hashed
    assert "connection " not in (conf := (out / broker_config.CONF_FILE).read_text())
    assert "autosave_interval" not in conf


EVERY_MISTAKE = """
[[agents]]
site = "school-a"
id = "room-101"
password = "pw-101"

[[agents]]
site = "school-a"
id = "room-103"
password = "pw-103"

[[agents]]
site = "school-c"
id = "room-301"
password = "pw-301"

[[bridges]]
name = "bridge-school-a"
site = "school-a"
agents = ["room-101", "room-999"]
password = "plain-secret-never-shown"
password_file = "bridge.secret"
district = "mqtt://district.example.cn:1883"
cafile = "missing-ca.crt"
reconnect_s = 30
reconnect_max_s = 10
colour = "blue"

[[bridges]]
name = "bridge school c"
site = "_central"
agents = ["room-301", "room-101"]
password_file = "nowhere.secret"
district = "mqtts://user:pw@district.example.cn"
"""


def test_every_mistake_in_the_bridges_is_named_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bridge.secret").write_text(FILE_SECRET + "\n")
    (tmp_path / "registry.toml").write_text(EVERY_MISTAKE)
    out = tmp_path / "out"
    argv = ["--registry", tmp_path / "registry.toml", "--out", out]
    assert broker_config_cli(*argv, "--bridge", "bridge-school-a", "--bridge", "bridge-school-x") == 2
    err = capsys.readouterr().err
    assert err.startswith("broker-config: ") and err.count("\n") == 1
    for expected in [
        "bridges[0].colour: unknown key",
        "bridges[0].password: give password or password_file, not both",
        "bridges[0].district: got 'mqtt://district.example.cn:1883', expected mqtts://HOST[:PORT]",
        "bridges[0].reconnect_max_s: got 10, expected at least reconnect_s",
        "bridges[0].cafile: " + str(tmp_path / "missing-ca.crt") + ": no such file",
        "bridges[0].agents: 'room-999' is not an agent of site 'school-a' in this registry",
        "bridges[0].agents: 'room-103' of site 'school-a' is registered here but not listed",
        "bridges[1].name: got 'bridge school c'",
        "bridges[1].site: got '_central', which is reserved for the centre",
        "bridges[1].password_file: cannot read " + str(tmp_path / "nowhere.secret"),
        "bridges[1].district: expected mqtts://HOST[:PORT], without credentials",
        "bridges[1].agents: 'room-101' is also behind bridge 'bridge-school-a'",
        "bridges[1].agents: 'room-301' is also an agent of this broker",
        "--bridge 'bridge-school-x': no [[bridges]] row has this name",
    ]:
        assert expected in err
    for secret in ("plain-secret-never-shown", FILE_SECRET, "pw-101", ":pw@"):
        assert secret not in err
    assert not out.exists()


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"agents": "[]"}, "bridges[0].agents: empty"),
        ({"agents": '["room 101"]'}, "bridges[0].agents[0]: got 'room 101'"),
        ({"district": None}, "bridges[0].district: missing"),
        ({"district": '"mqtts://district.example.cn:99999"'}, "bridges[0].district: got"),
        ({"district": '"mqtts://bad host\\nconnection evil"'}, "bridges[0].district: got"),
        ({"cafile": '"ca.crt\\naddress evil:1883"'}, "bridges[0].cafile: contains a line break"),
        ({"password": '" padded "'}, "bridges[0].password: starts or ends with a space"),
        ({"password": None}, "bridges[0].password: missing (or give password_file)"),
        ({"reconnect_s": "0"}, "bridges[0].reconnect_s: got 0, expected 1..3600"),
        ({"name": '"room-101"'}, "username 'room-101': registered twice"),
    ],
)
def test_a_bad_bridge_row_is_refused_naming_its_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: dict[str, str | None], named: str
) -> None:
    row = {
        "name": '"bridge-school-a"',
        "site": '"school-a"',
        "agents": '["room-101", "room-102"]',
        "password": f'"{SECRET}"',
        "district": '"mqtts://district.example.cn"',
    } | change
    text = SCHOOL.split("[[bridges]]")[0] + "[[bridges]]\n" + "".join(f"{k} = {v}\n" for k, v in row.items() if v)
    (tmp_path / "school.toml").write_text(text)
    argv = ["--registry", tmp_path / "school.toml", "--bridge", "bridge-school-a", "--out", tmp_path / "out"]
    assert broker_config_cli(*argv) == 2
    err = capsys.readouterr().err
    assert named in err and SECRET not in err


def test_the_connection_block_holds_nothing_but_the_rows_values() -> None:
    bridge = BridgeAccount("bridge-x", "school-x", ("room-1",), "pw with spaces", "mqtts://[::1]:8884", "")
    text = connection_text(bridge)
    assert "address ::1:8884" in text.splitlines()
    assert "bridge_capath /etc/ssl/certs" in text.splitlines()  # no cafile: the system's CAs
    assert "remote_password pw with spaces" in text.splitlines()
    assert "connection bridge-x" in text.splitlines() and text.count("connection ") == 1
