"""What a person sees on a page, checked for English sentences and raw JSON (for the zh-CN pages).

`assert_plain_chinese(page, ids=...)` walks the visible text of a Playwright page in Chromium
(text nodes with a box on the screen, the options of its lists, placeholders, the title) and fails
naming each English word or JSON fragment found, and where.  Allowed: the ids the test passes
(device, source and agent ids from its config), units, and the brand and standard names people
read as they are (HDMI, PIN, USB-C, …).  Text behind a closed 技术信息 toggle has no box, so it is
not seen, as a person would not see it.

`problems(texts, ids)` is the pure check, for any page's text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

# Names read as they are, in any language: brands, standards, connectors.
BRANDS = frozenset(
    {
        "HDMI", "DisplayPort", "DP", "DVI", "VGA", "RGB", "YPbPr", "OPS", "PC", "USB", "USB-C", "DVD", "HD",
        "MagicInfo", "PIN", "Wi-Fi", "IP", "ONVIF", "PJLink", "VISCA", "RTSP", "WebRTC", "OK",
        "MAC", "CPU", "Type-C",  # the dashboard's network cards, PC load, a panel's USB-C input
        "English",  # a language switch names the other language in its own words
    }
)  # fmt: skip
UNITS = frozenset(
    {"ms", "s", "min", "h", "fps", "kbps", "Mbps", "KB", "MB", "GB", "TB", "KiB", "MiB", "GiB", "Hz", "dB", "px"}
)
# A run of id characters with at least one Latin letter: words, ids (room-101, /dev/ttyUSB0), 12ms.
TOKEN = re.compile(r"[A-Za-z0-9_./:+@-]*[A-Za-z][A-Za-z0-9_./:+@-]*")
PARTS = re.compile(r"[-_./:+@]+")
NUMBER_UNIT = re.compile(r"[\d.,]+([A-Za-z]+)")
# JSON or code leaking through: {"key", "key": value, [{, an unfilled {placeholder}, [object Object].
RAW = re.compile(r'[{\[]\s*"|"[\w.-]+"\s*:|\[\s*\{|\{[a-z_]+\}|\[object \w+\]')

# Visible text in the page: every text node with a box on the screen (a closed <details> has none),
# the options of each visible list (what opens on a touch), placeholders, button values, the title.
COLLECT = """() => {
  const where = (node) => {
    const parts = [];
    for (let el = node; el && el !== document.body && parts.length < 4; el = el.parentElement) {
      parts.unshift(el.tagName.toLowerCase() + (el.id ? "#" + el.id : "")
        + (el.classList.length ? "." + [...el.classList].join(".") : ""));
    }
    return parts.join(" > ");
  };
  const seen = (el) => el.checkVisibility({ opacityProperty: true, visibilityProperty: true });
  // Inside a closed <details> only its <summary> shows (Chromium still gives the rest boxes).
  const folded = (node) => {
    for (let el = node.parentElement; el; el = el.parentElement) {
      if (el.tagName !== "DETAILS" || el.open) continue;
      const summary = el.querySelector(":scope > summary");
      if (!summary || !summary.contains(node)) return true;
    }
    return false;
  };
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.textContent.trim();
    const parent = node.parentElement;
    if (!text || !parent || parent.closest("script, style, template, option")) continue;
    if (!seen(parent) || folded(node)) continue;
    const range = document.createRange();
    range.selectNodeContents(node);
    if (![...range.getClientRects()].some((r) => r.width > 0 && r.height > 0)) continue;
    out.push({ text, where: where(parent) });
  }
  for (const select of document.querySelectorAll("select")) {
    if (seen(select)) for (const option of select.options) out.push({ text: option.text.trim(), where: where(option) });
  }
  for (const input of document.querySelectorAll("input, textarea")) {
    if (!seen(input)) continue;
    if (input.placeholder) out.push({ text: input.placeholder, where: where(input) + "[placeholder]" });
    const button = ["button", "submit", "reset"].includes(input.type);
    if (button && input.value) out.push({ text: input.value, where: where(input) });
  }
  out.push({ text: document.title, where: "title" });
  return { lang: document.documentElement.lang, texts: out.filter((t) => t.text) };
}"""


def english(text: str, ids: Iterable[str] = ()) -> list[str]:
    """The words of `text` that are neither Chinese nor an allowed id, unit or brand."""
    allowed = BRANDS | UNITS | set(ids)
    found = []
    for token in TOKEN.findall(text):
        word = token.strip("-_./:+@")
        if not word or token in allowed or word in allowed or _number_with_unit(word):
            continue
        parts = [p for p in PARTS.split(word) if p]
        if all(p in allowed or _number_with_unit(p) or not re.search("[A-Za-z]", p) for p in parts):
            continue
        found.append(word)
    return found


def _number_with_unit(word: str) -> bool:
    match = NUMBER_UNIT.fullmatch(word)
    return match is not None and match.group(1) in UNITS


def problems(texts: Iterable[Mapping[str, str]], ids: Iterable[str] = ()) -> list[str]:
    """Each visible text (``{"text", "where"}``) that holds English or raw JSON, said with where it is."""
    allowed = set(ids)
    out = []
    for item in texts:
        text, where = item["text"], item.get("where", "")
        words = english(text, allowed)
        if words:
            out.append(f"English {words} in {text!r} at {where}")
        if RAW.search(text):
            out.append(f"raw JSON or code in {text!r} at {where}")
    return out


async def visible_texts(page: Any) -> list[dict[str, str]]:
    """Every text a person sees on `page` now (a Playwright page), with where it is."""
    found = await page.evaluate(COLLECT)
    return list(found["texts"])


async def assert_plain_chinese(page: Any, ids: Iterable[str] = ()) -> list[dict[str, str]]:
    """Fail naming every English word or raw JSON a person sees on the zh-CN `page`; the texts seen."""
    found = await page.evaluate(COLLECT)
    assert found["lang"] == "zh-CN", f"the page is in {found['lang']!r}, not zh-CN"
    texts = list(found["texts"])
    chinese = [t for t in texts if re.search(r"[\u4e00-\u9fff]", t["text"])]
    assert len(chinese) >= 3, f"hardly any Chinese on the page: {texts}"
    bad = problems(texts, ids)
    assert not bad, "the zh-CN page shows English or raw JSON:\n" + "\n".join(bad)
    return texts
