"""SOAP 1.2 for the ONVIF simulator: hostile-safe parsing, envelopes, ONVIF faults.

Parsing refuses what SOAP 1.2 forbids anyway (a document type declaration, hence every entity
but the five predefined ones; processing instructions) and bounds size, depth and element count
before a tree is built, so an entity bomb or a deeply nested body costs one fault.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from xml.parsers import expat
from xml.sax.saxutils import escape, quoteattr

from drivers.errors import DriverError

ENV = "http://www.w3.org/2003/05/soap-envelope"
SOAP11_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
TER = "http://www.onvif.org/ver10/error"
TT = "http://www.onvif.org/ver10/schema"
TDS = "http://www.onvif.org/ver10/device/wsdl"
TRT = "http://www.onvif.org/ver10/media/wsdl"
TPTZ = "http://www.onvif.org/ver20/ptz/wsdl"
DN = "http://www.onvif.org/ver10/network/wsdl"
WSA = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
WSA10 = "http://www.w3.org/2005/08/addressing"
WSD = "http://schemas.xmlsoap.org/ws/2005/04/discovery"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
XML_NS = "http://www.w3.org/XML/1998/namespace"

# Every namespace a reply may use, declared once on the envelope, so that QName values in text
# (fault subcodes, discovery Types) resolve as well as element names do.
PREFIXES = {
    ENV: "env",
    TER: "ter",
    TT: "tt",
    TDS: "tds",
    TRT: "trt",
    TPTZ: "tptz",
    DN: "dn",
    WSA: "wsa",
    WSD: "d",
    XML_NS: "xml",
}

MAX_MESSAGE_BYTES = 64 * 1024
MAX_DEPTH = 32
MAX_ELEMENTS = 2000
# Header blocks this device processes (WS-Security) or may safely ignore (WS-Addressing: a
# request-response over HTTP replies on the same connection whatever wsa:ReplyTo says).
UNDERSTOOD_HEADERS = frozenset({WSSE, WSA, WSA10})


@dataclass
class SoapFault(DriverError):
    """An ONVIF fault: SOAP 1.2 code, ONVIF subcodes (ter: local names), and the reason text."""

    code: str  # Sender, Receiver, VersionMismatch, MustUnderstand
    subcodes: tuple[str, ...]
    reason: str
    http_status: int = field(default=0)
    headers: tuple[ET.Element, ...] = ()  # header blocks the fault reply carries (Upgrade, NotUnderstood)

    def __post_init__(self) -> None:
        """SOAP 1.2's HTTP binding: 400 for a Sender fault, 500 for the rest (unless given)."""
        super().__init__(f"{self.code} {'/'.join(self.subcodes)}: {self.reason}")
        if not self.http_status:
            self.http_status = 400 if self.code == "Sender" else 500

    @property
    def label(self) -> str:
        """A short form for logs: the innermost subcode, or the code."""
        return f"ter:{self.subcodes[-1]}" if self.subcodes else f"env:{self.code}"


def sender(*subcodes: str, reason: str) -> SoapFault:
    """An env:Sender fault with these ter: subcodes."""
    return SoapFault("Sender", subcodes, reason)


def receiver(*subcodes: str, reason: str) -> SoapFault:
    """An env:Receiver fault with these ter: subcodes."""
    return SoapFault("Receiver", subcodes, reason)


def not_well_formed(why: str) -> SoapFault:
    """The generic fault for XML that is broken, forbidden or too big to build."""
    return sender("WellFormed", reason=f"Well-formed Error: {why}")


def split_tag(tag: str) -> tuple[str, str]:
    """'{namespace}local' as (namespace, local); ('', tag) for a tag without a namespace."""
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    return "", tag


@dataclass(frozen=True)
class Request:
    """A parsed SOAP 1.2 request: its header blocks and the operation element of its body."""

    headers: tuple[ET.Element, ...]
    operation: ET.Element

    @property
    def namespace(self) -> str:
        """The operation's namespace (which service's WSDL it comes from)."""
        return split_tag(self.operation.tag)[0]

    @property
    def name(self) -> str:
        """The operation's local name (GetProfiles, ContinuousMove, ...)."""
        return split_tag(self.operation.tag)[1]


class _TreeBuilder:
    """Expat callbacks that build an ElementTree and stop at the first forbidden construct."""

    def __init__(self) -> None:
        self.builder = ET.TreeBuilder()
        self.depth = 0
        self.count = 0

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        self.depth += 1
        self.count += 1
        if self.depth > MAX_DEPTH:
            raise not_well_formed(f"nested deeper than {MAX_DEPTH} elements")
        if self.count > MAX_ELEMENTS:
            raise not_well_formed(f"more than {MAX_ELEMENTS} elements")
        self.builder.start(_clark(tag), {_clark(k): v for k, v in attrs.items()})

    def end(self, tag: str) -> None:
        self.depth -= 1
        self.builder.end(_clark(tag))

    def forbid(self, *_: object) -> None:
        raise not_well_formed("a SOAP message must not contain a DTD or processing instructions")


def _clark(name: str) -> str:
    """Expat's 'namespace local' form (namespace_separator=' ') as ElementTree's '{ns}local'."""
    namespace, _, local = name.rpartition(" ")
    return f"{{{namespace}}}{local}" if namespace else local


def parse_xml(data: bytes, namespaces: dict[str, str] | None = None) -> ET.Element:
    """Parse a bounded, DTD-free XML document; SoapFault (ter:WellFormed) for anything else.

    `namespaces`, when given, collects the prefixes declared anywhere in the document (for
    resolving QNames in text, such as WS-Discovery Types; a prefix declared twice keeps the last).
    """
    if len(data) > MAX_MESSAGE_BYTES:
        raise not_well_formed(f"message larger than {MAX_MESSAGE_BYTES} bytes")
    tree = _TreeBuilder()
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartElementHandler = tree.start
    parser.EndElementHandler = tree.end
    parser.CharacterDataHandler = tree.builder.data
    parser.StartDoctypeDeclHandler = tree.forbid
    parser.EntityDeclHandler = tree.forbid
    parser.ProcessingInstructionHandler = tree.forbid
    if namespaces is not None:
        parser.StartNamespaceDeclHandler = lambda prefix, uri: namespaces.__setitem__(prefix or "", uri)
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise not_well_formed(expat.errors.messages[exc.code]) from exc
    return tree.builder.close()


def parse_request(data: bytes) -> Request:
    """The SOAP 1.2 request in `data`, or the SoapFault that a device answers it with."""
    root = parse_xml(data)
    if root.tag != f"{{{ENV}}}Envelope":
        # SOAP 1.2 part 1, 5.4.7: say which envelope version this node speaks.
        supported = element(f"{{{ENV}}}SupportedEnvelope", None, {"qname": "env:Envelope"})
        upgrade = (element(f"{{{ENV}}}Upgrade", None, None, supported),)
        raise SoapFault("VersionMismatch", (), "SOAP version mismatch: expected a SOAP 1.2 Envelope", 0, upgrade)
    header = root.find(f"{{{ENV}}}Header")
    body = root.find(f"{{{ENV}}}Body")
    if body is None:
        raise sender("Tag", reason="No Tag: the envelope has no Body")
    children = list(body)
    if len(children) != 1:
        raise sender("InvalidArgs", reason=f"Invalid Args: the Body holds {len(children)} operations, not 1")
    blocks = tuple(header) if header is not None else ()
    for block in blocks:
        must = block.get(f"{{{ENV}}}mustUnderstand", "false")
        namespace, local = split_tag(block.tag)
        if must in ("true", "1") and namespace not in UNDERSTOOD_HEADERS:
            # SOAP 1.2 part 1, 5.4.8: name the block (its namespace declared where it is named).
            named = {"qname": f"nu:{local}", "xmlns:nu": namespace[:512]}
            not_understood = (element(f"{{{ENV}}}NotUnderstood", None, named),)
            raise SoapFault("MustUnderstand", (), "SOAP header blocks not understood", 0, not_understood)
    return Request(blocks, children[0])


def element(tag: str, text: object = None, attrs: Mapping[str, object] | None = None, *kids: ET.Element) -> ET.Element:
    """An element '{ns}local' with optional text (str()'d; bools as xs:boolean), attributes and children."""
    node = ET.Element(tag, {k: _lexical(v) for k, v in (attrs or {}).items() if v is not None})
    if text is not None:
        node.text = _lexical(text)
    node.extend(kids)
    return node


def _lexical(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(round(value, 6))
    return str(value)


def _qname(name: str) -> str:
    if not name.startswith("{"):
        return name
    namespace, _, local = name[1:].partition("}")
    prefix = PREFIXES.get(namespace)
    if prefix is None:
        raise ValueError(f"no prefix for namespace {namespace}")
    return f"{prefix}:{local}"


def _write(node: ET.Element, out: list[str]) -> None:
    name = _qname(node.tag) if isinstance(node.tag, str) else ""
    attrs = "".join(f" {_qname(k)}={quoteattr(v)}" for k, v in node.attrib.items())
    if len(node) == 0 and not node.text:
        out.append(f"<{name}{attrs}/>")
        return
    out.append(f"<{name}{attrs}>{escape(node.text or '')}")
    for kid in node:
        _write(kid, out)
        if kid.tail:
            out.append(escape(kid.tail))
    out.append(f"</{name}>")


def envelope(body: ET.Element, headers: tuple[ET.Element, ...] = ()) -> bytes:
    """A SOAP 1.2 envelope around `body` (and header blocks), every known prefix declared."""
    declared = "".join(f' xmlns:{p}="{ns}"' for ns, p in PREFIXES.items() if p != "xml")
    out = [f'<?xml version="1.0" encoding="UTF-8"?>\n<env:Envelope{declared}>']
    if headers:
        out.append("<env:Header>")
        for block in headers:
            _write(block, out)
        out.append("</env:Header>")
    out.append("<env:Body>")
    _write(body, out)
    out.append("</env:Body></env:Envelope>")
    return "".join(out).encode("utf-8")


def fault_body(fault: SoapFault) -> ET.Element:
    """The env:Fault element for `fault`, subcodes nested as ONVIF's Core spec shows."""
    code = element(f"{{{ENV}}}Code", None, None, element(f"{{{ENV}}}Value", f"env:{fault.code}"))
    parent = code
    for sub in fault.subcodes:
        nested = element(f"{{{ENV}}}Subcode", None, None, element(f"{{{ENV}}}Value", f"ter:{sub}"))
        parent.append(nested)
        parent = nested
    reason = element(
        f"{{{ENV}}}Reason", None, None, element(f"{{{ENV}}}Text", fault.reason, {f"{{{XML_NS}}}lang": "en"})
    )
    return element(f"{{{ENV}}}Fault", None, None, code, reason)
