"""Broker security: the generated password file, ACL and conf snippet on a real Mosquitto."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pki import make_pki
from registry import broker_config_args

from central import broker_config
from central.broker_config import write_broker_config
from central.broker_registry import AgentAccount, Registry, UserAccount
from central.mosquitto import LocalBroker, TlsFiles, free_port
from contract import CENTRAL_STATUS, Topic, Topics
from contract.mqtt import BrokerAddress, Client, Message, MqttError, make_client

EXAMPLE_REGISTRY = Path(__file__).parents[2] / "examples" / "broker-registry.toml"

ROOM_101 = AgentAccount("school-a", "room-101", "pw-101")
ROOM_102 = AgentAccount("school-a", "room-102", "pw-102")
ROOM_201 = AgentAccount("school-b", "room-201", "pw-201")
CENTRAL = UserAccount("central", "pw-central", "central")
TECH = UserAccount("tech", "pw-tech", "technician")
REGISTRY = Registry((ROOM_101, ROOM_102, ROOM_201), (CENTRAL, TECH))

T101 = Topics(ROOM_101.site, ROOM_101.agent_id)
T102 = Topics(ROOM_102.site, ROOM_102.agent_id)
T201 = Topics(ROOM_201.site, ROOM_201.agent_id)
RTC_101_TO_102 = str(Topic(ROOM_101.site, ROOM_101.agent_id, "rtc", ROOM_102.agent_id))
SENTINEL = b"sentinel"
WAIT_S = 10.0


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[LocalBroker]:
    """A Mosquitto using the generated password file and ACL, and nothing else."""
    files = write_broker_config(REGISTRY, tmp_path / "conf", None, 1883)
    with LocalBroker(tmp_path / "broker", password_file=files.password_file, acl_file=files.acl_file) as running:
        yield running


def connect(broker: LocalBroker, account: AgentAccount | UserAccount, *, ca_file: Path | None = None) -> Client:
    address = BrokerAddress.parse(
        broker.url, username=account.username, password=account.password, ca_file=str(ca_file or "")
    )
    return make_client(address, f"test-{account.username}")


async def receive_until(client: Client, topic: str) -> list[Message]:
    """Every message up to and including the sentinel on `topic`."""
    got: list[Message] = []
    async with asyncio.timeout(WAIT_S):
        async for message in client.messages:
            got.append(message)
            if message.topic.value == topic and message.payload == SENTINEL:
                return got
    raise AssertionError("the message iterator ended before the sentinel")


def topics_of(messages: list[Message]) -> list[str]:
    return [m.topic.value for m in messages]


async def test_agent_publishes_only_under_its_own_subtree(secured: LocalBroker) -> None:
    allowed = [T101.status, T101.info, T101.state("panel"), T101.telemetry, T101.reply, RTC_101_TO_102]
    denied = [
        T102.status,  # another agent, same site
        T201.status,  # another agent, other site
        Topics(ROOM_201.site, ROOM_101.agent_id).status,  # its own id under another site
        CENTRAL_STATUS,
        T101.cmd("panel.power"),
        "classroom/v1/school-a/room-101",
    ]
    async with connect(secured, CENTRAL) as centre, connect(secured, ROOM_101) as agent:
        await centre.subscribe("#", qos=1)
        for topic in denied + allowed:
            await agent.publish(topic, b"{}", qos=1)
        await agent.publish(T101.event, SENTINEL, qos=1)
        got = await receive_until(centre, T101.event)
    assert topics_of(got) == [*allowed, T101.event]


async def test_agent_reads_only_its_own_commands_and_the_centre_status(secured: LocalBroker) -> None:
    async with (
        connect(secured, CENTRAL) as centre,
        connect(secured, ROOM_101) as agent,
        connect(secured, ROOM_102) as other,
    ):
        for topic in (T102.cmd(), T201.cmd(), "classroom/v1/#", "#", T101.cmd()):
            await agent.subscribe(topic, qos=1)
        await other.publish(T102.status, b"{}", qos=1)
        await other.publish(T102.reply, b"{}", qos=1)
        await centre.publish(T102.cmd("panel.power"), b"{}", qos=1)
        await centre.publish(T201.cmd("panel.power"), b"{}", qos=1)
        await centre.publish(CENTRAL_STATUS, b"{}", qos=1)
        await centre.publish(T101.cmd("agent.ping"), SENTINEL, qos=1)
        got = await receive_until(agent, T101.cmd("agent.ping"))
    assert set(topics_of(got)) == {CENTRAL_STATUS, T101.cmd("agent.ping")}


async def test_webrtc_signalling_reaches_only_the_agent_it_is_addressed_to(secured: LocalBroker) -> None:
    # 专递课堂 across schools: room-201 (school-b) signals room-101 (school-a) through the broker.
    rtc_201_to_101 = str(Topic(ROOM_201.site, ROOM_201.agent_id, "rtc", ROOM_101.agent_id))
    rtc_201_to_102 = str(Topic(ROOM_201.site, ROOM_201.agent_id, "rtc", ROOM_102.agent_id))
    async with (
        connect(secured, ROOM_201) as caller,
        connect(secured, ROOM_101) as callee,
        connect(secured, ROOM_102) as bystander,
    ):
        await callee.subscribe("classroom/v1/+/+/rtc/room-101", qos=1)
        await bystander.subscribe("classroom/v1/+/+/rtc/#", qos=1)  # would love to listen in
        await bystander.subscribe("classroom/v1/+/+/rtc/room-102", qos=1)
        await caller.publish(rtc_201_to_101, b'{"offer": 1}', qos=1)
        await caller.publish(rtc_201_to_102, SENTINEL, qos=1)
        await caller.publish(rtc_201_to_101, SENTINEL, qos=1)
        got_callee = await receive_until(callee, rtc_201_to_101)
        got_bystander = await receive_until(bystander, rtc_201_to_102)
    assert [m.payload for m in got_callee] == [b'{"offer": 1}', SENTINEL]
    assert topics_of(got_bystander) == [rtc_201_to_102]  # nothing addressed to room-101


async def test_only_the_centre_sends_commands(secured: LocalBroker) -> None:
    async with (
        connect(secured, CENTRAL) as centre,
        connect(secured, ROOM_101) as agent,
        connect(secured, TECH) as technician,
    ):
        await agent.subscribe(T101.cmd(), qos=1)
        await agent.publish(T101.cmd("panel.power"), b"{}", qos=1)
        await agent.publish(T101.cmd("sub/level"), b"{}", qos=1)
        await agent.publish(T101.cmd().removesuffix("/#"), b"{}", qos=1)
        await technician.publish(T101.cmd("panel.power"), b"{}", qos=1)
        await centre.publish(T101.cmd("agent.ping"), SENTINEL, qos=1)
        got = await receive_until(agent, T101.cmd("agent.ping"))
    assert topics_of(got) == [T101.cmd("agent.ping")]


async def test_technician_reads_the_whole_fleet(secured: LocalBroker) -> None:
    async with (
        connect(secured, TECH) as technician,
        connect(secured, ROOM_101) as agent,
        connect(secured, ROOM_201) as other,
        connect(secured, CENTRAL) as centre,
    ):
        await technician.subscribe("classroom/v1/#", qos=1)
        await agent.publish(T101.status, b"{}", qos=1)
        await other.publish(T201.telemetry, b"{}", qos=1)
        await centre.publish(T101.cmd("panel.power"), b"{}", qos=1)
        await technician.publish(T201.status, b"forged", qos=1)
        await centre.publish(CENTRAL_STATUS, SENTINEL, qos=1)
        got = await receive_until(technician, CENTRAL_STATUS)
    assert topics_of(got) == [T101.status, T201.telemetry, T101.cmd("panel.power"), CENTRAL_STATUS]


@pytest.mark.parametrize(
    "account",
    [
        AgentAccount(ROOM_101.site, ROOM_101.agent_id, "wrong-password"),
        AgentAccount(ROOM_101.site, ROOM_101.agent_id, ROOM_102.password),
        UserAccount("nobody", "pw", "technician"),
        UserAccount("", "", "technician"),
    ],
    ids=["wrong-password", "another-agents-password", "unknown-user", "anonymous"],
)
async def test_bad_credentials_are_refused_at_connect(
    secured: LocalBroker, account: AgentAccount | UserAccount
) -> None:
    with pytest.raises(MqttError) as refused:
        async with connect(secured, account):
            pass
    assert "authori" in str(refused.value).lower()


@pytest.fixture
def tls_files(tmp_path: Path) -> TlsFiles:
    """A throwaway CA and a server certificate for 127.0.0.1 and localhost, made by the openssl CLI."""
    return make_pki(tmp_path / "pki")


@pytest.fixture
def secured_tls(tmp_path: Path, tls_files: TlsFiles) -> Iterator[LocalBroker]:
    """A TLS-only Mosquitto using the generated password file and ACL."""
    files = write_broker_config(REGISTRY, tmp_path / "conf", tls_files, 8883)
    with LocalBroker(
        tmp_path / "broker", password_file=files.password_file, acl_file=files.acl_file, tls=tls_files
    ) as running:
        yield running


async def test_tls_with_the_ca_and_credentials_works(secured_tls: LocalBroker, tls_files: TlsFiles) -> None:
    assert secured_tls.url.startswith("mqtts://127.0.0.1:")
    async with (
        connect(secured_tls, CENTRAL, ca_file=tls_files.cafile) as centre,
        connect(secured_tls, ROOM_101, ca_file=tls_files.cafile) as agent,
    ):
        await centre.subscribe("classroom/v1/#", qos=1)
        await agent.publish(T102.status, b"{}", qos=1)
        await agent.publish(T101.status, SENTINEL, qos=1)
        got = await receive_until(centre, T101.status)
    assert topics_of(got) == [T101.status]


async def test_tls_without_the_ca_is_refused(secured_tls: LocalBroker) -> None:
    with pytest.raises(MqttError, match="CERTIFICATE_VERIFY_FAILED"):
        async with connect(secured_tls, ROOM_101):
            pass


async def test_tls_with_a_wrong_password_is_refused(secured_tls: LocalBroker, tls_files: TlsFiles) -> None:
    intruder = AgentAccount(ROOM_101.site, ROOM_101.agent_id, "guess")
    with pytest.raises(MqttError, match="(?i)authori"):
        async with connect(secured_tls, intruder, ca_file=tls_files.cafile):
            pass


class SnippetBroker(LocalBroker):
    """Mosquitto run from the generated conf snippet itself (plus where to log)."""

    def __init__(self, folder: Path, port: int, snippet: Path, tls: TlsFiles) -> None:
        super().__init__(folder, port, tls=tls)
        self.snippet = snippet

    def config(self) -> str:
        # Started as root, mosquitto would switch to user `mosquitto`, who cannot enter tmp_path.
        run_as = "user root\n" if getattr(os, "geteuid", lambda: -1)() == 0 else ""
        return f"{run_as}log_dest file {self.log_file}\n{self.snippet.read_text()}"


async def test_cli_writes_a_config_mosquitto_runs(tmp_path: Path, tls_files: TlsFiles) -> None:
    out, port = tmp_path / "out", free_port()
    newcomer = AgentAccount("school-c", "room-301", "pass:with:colons")
    tls = ["--tls-ca", tls_files.cafile, "--tls-cert", tls_files.certfile, "--tls-key", tls_files.keyfile]
    args = broker_config_args(
        *["--registry", str(EXAMPLE_REGISTRY), "--agent", f"{newcomer.site}/{newcomer.agent_id}:{newcomer.password}"]
        + ["--user", "ops:密码 ops secret:central", "--out", str(out), "--port", str(port), "--bind", "127.0.0.1"]
        + [str(a) for a in tls]
    )
    assert broker_config.run(args) == 0
    conf = out / broker_config.CONF_FILE
    assert {p.name for p in out.iterdir()} == {broker_config.PASSWORD_FILE, broker_config.ACL_FILE, conf.name}
    assert "pass:with:colons" not in (out / broker_config.PASSWORD_FILE).read_text()

    ops = UserAccount("ops", "密码 ops secret", "central")
    with SnippetBroker(tmp_path / "broker", port, conf, tls_files) as running:
        async with (
            connect(running, ops, ca_file=tls_files.cafile) as centre,
            connect(running, newcomer, ca_file=tls_files.cafile) as agent,
        ):
            await centre.subscribe("classroom/v1/#", qos=1)
            await agent.publish(T101.status, b"{}", qos=1)
            await agent.publish(Topics(newcomer.site, newcomer.agent_id).status, SENTINEL, qos=1)
            got = await receive_until(centre, Topics(newcomer.site, newcomer.agent_id).status)
        with pytest.raises(MqttError, match="(?i)authori"):
            async with connect(running, UserAccount("anyone", "", "technician"), ca_file=tls_files.cafile):
                pass
    assert topics_of(got) == [Topics(newcomer.site, newcomer.agent_id).status]


BAD_REGISTRY = """\
[[agents]]
site = "school a"
id = "room-101"

[[users]]
name = "room-101"
password = "pw"
role = "admin"
"""


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--agent", "school-a-room-101:pw"], "SITE/AGENT_ID:PASSWORD"),
        (["--agent", "school-a/room-101"], "SITE/AGENT_ID:PASSWORD"),
        (["--agent", "school-a/room 101:pw"], "agents[0].id"),
        (["--agent", "_central/room-101:pw"], "agents[0].site"),
        (["--user", "ops:pw:admin"], "users[0].role"),
        (["--user", "ops:technician"], "NAME:PASSWORD:ROLE"),
        (["--agent", "school-a/ops:pw", "--user", "ops:pw:central"], "registered twice"),
        (["--agent", "school-a/room-101:pw", "--tls-ca", "ca.crt"], "--tls-cert"),
        ([], "no agents and no users"),
        (["--registry", "{empty}"], "no agents and no users"),
        (["--registry", "{missing}"], "cannot read"),
        (["--registry", "{bad}"], "users[0].role: got 'admin'"),
        (["--registry", "{bad}"], "agents[0].password: missing"),
        (["--registry", "{bad}"], "agents[0].site: got 'school a'"),
        (["--agent", "school-a/room-101: pw"], "agents[0].password: starts or ends with a space"),
        (["--registry", "{bad}"], "username 'room-101': registered twice"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], named: str
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(BAD_REGISTRY)
    out = tmp_path / "out"
    (tmp_path / "empty.toml").write_text("# nobody yet\n")
    files = {"{bad}": bad, "{empty}": tmp_path / "empty.toml", "{missing}": tmp_path / "missing.toml"}
    args = broker_config_args(*[str(files.get(a, a)) for a in argv], "--out", out)
    assert broker_config.run(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("broker-config: ") and err.count("\n") == 1
    assert named in err
    assert not out.exists()
