"""The wire contract both programs speak: topics, typed payloads, timestamps and their errors.

`contract.rtc` (WebRTC signalling) and `contract.mqtt` (the one aiomqtt importer) are imported by
name where they are used, so that reading a payload does not load the MQTT client.
"""

from contract.errors import AddressError, BrokerError, ContractError, PayloadError
from contract.payloads import (
    ACTIONS,
    REPLY_STATUSES,
    SEVERITIES,
    STATES,
    Command,
    CommandReply,
    CommandStatus,
    DeviceInfo,
    DeviceState,
    Event,
    Info,
    SourceInfo,
    Status,
    Telemetry,
    for_audit,
)
from contract.power import Nic
from contract.timestamps import now_iso, parse_iso, to_iso
from contract.topics import CENTRAL_STATUS, FLEET, ROOT, Topic, Topics
from contract.wire import SCHEMA, decode, encode

__all__ = [
    "ACTIONS",
    "CENTRAL_STATUS",
    "FLEET",
    "REPLY_STATUSES",
    "ROOT",
    "SCHEMA",
    "SEVERITIES",
    "STATES",
    "AddressError",
    "BrokerError",
    "Command",
    "CommandReply",
    "CommandStatus",
    "ContractError",
    "DeviceInfo",
    "DeviceState",
    "Event",
    "Info",
    "Nic",
    "PayloadError",
    "SourceInfo",
    "Status",
    "Telemetry",
    "Topic",
    "Topics",
    "decode",
    "encode",
    "for_audit",
    "now_iso",
    "parse_iso",
    "to_iso",
]
