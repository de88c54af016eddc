"""A checker for pages shown to Chinese readers: no visible English sentence and no raw JSON.

`visible_texts(page)` walks the DOM in Chromium (Playwright) and returns every text a person can
see: each visible text node (a closed ``<details>``, a hidden element or a ``<script>`` shows
nothing), the options of each select, placeholders, and the document's title.  `foreign_texts`
keeps those with a Latin word outside the allow-list (ids, units and brand names, as tokens) or
that look like JSON.  Importable from every test package, like rooms.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

# Units, abbreviations and brand or protocol names a Chinese page may show as they are.
UNITS_AND_BRANDS = frozenset(
    {
        *("ms", "kbps", "mbps", "mbit", "gb", "mb", "kb", "gib", "mib", "fps", "h", "s", "min"),
        *("cpu", "mac", "ip", "hdmi", "dp", "vga", "dvi", "ops", "usb", "type", "magicinfo"),
        *("pjlink", "onvif", "rtsp", "visca", "pelco", "mdc", "tcp", "udp", "wol", "id"),
        "english",  # the link to the English pages, named in its own language
    }
)
_WORD = re.compile(r"[A-Za-z][A-Za-z'’]*")
# MAC addresses and hex digests are ids, whatever letters they hold.
_HEX_ID = re.compile(r"\b[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5}\b|\b[0-9a-f]{8,}\b")
# Raw JSON: an object or list opening on a key or string, or a key with its value.
_JSON = re.compile(r'[{\[]\s*"|"\s*:\s*["{\[\d]')

VISIBLE_TEXTS_JS = """() => {
  const out = [];
  const seen = (node) => node.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true });
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.textContent.trim();
    const parent = node.parentElement;
    if (!text || !parent || parent.closest("script, style, template, option")) continue;
    if (seen(parent)) out.push(text);
  }
  for (const select of document.querySelectorAll("select")) {
    if (seen(select)) for (const option of select.options) out.push(option.textContent.trim());
  }
  for (const node of document.querySelectorAll("[placeholder]")) if (seen(node)) out.push(node.placeholder);
  out.push(document.title);
  return out.filter(Boolean);
}"""


async def visible_texts(page: Any) -> list[str]:
    """Every text a person sees on `page` (a Playwright page), in document order."""
    texts: list[str] = await page.evaluate(VISIBLE_TEXTS_JS)
    return texts


def tokens(names: Iterable[str]) -> set[str]:
    """The Latin words of ids and names (``samsung-mdc`` -> ``samsung``, ``mdc``), lower-cased."""
    return {word.lower() for name in names for word in _WORD.findall(name)}


def foreign_texts(texts: Iterable[str], allowed: Iterable[str] = ()) -> list[str]:
    """The texts with an English word that is not an id, a unit or a brand name, or that look like JSON.

    `allowed` are the page's own ids and names (agent and device ids, profiles, user names, sites),
    split into words here; a single letter is never a sentence.
    """
    words = UNITS_AND_BRANDS | tokens(allowed)
    bad = []
    for text in texts:
        if _JSON.search(text):
            bad.append(text)
            continue
        if any(len(w) > 1 and w.lower() not in words for w in _WORD.findall(_HEX_ID.sub(" ", text))):
            bad.append(text)
    return bad


async def assert_plain_chinese(page: Any, allowed: Iterable[str] = ()) -> list[str]:
    """Fail naming every visible text with English outside `allowed` ids, units and brands; the texts seen."""
    texts = await visible_texts(page)
    bad = foreign_texts(texts, allowed)
    assert not bad, f"English or raw JSON on a Chinese page ({page.url}): {bad}"
    return texts
