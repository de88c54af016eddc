"""Headless Chromium against the agent's WHEP/WHIP routes: the watch page, another site's page, browser publishers."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import pytest
from aiohttp import web
from browser import MEDIA_ARGS, chromium, chromium_page, script_errors
from test_whep import ICE, SIZE, Agent, agent, free_port, serve, teacher, until

from streaming.whep import WhepService

__all__ = ["agent", "teacher"]  # the fixtures, used by name (agent asks for teacher)


# --- real headless Chromium: the watch page (WHEP) and a browser publisher (WHIP) ---------------

SCREENSHOTS = Path(tempfile.gettempdir()) / "classroom-agent-screenshots"
FRAMES_DECODED_JS = """async () => {
  let frames = 0;
  (await window.whep.pc.getStats()).forEach((r) => {
    if (r.type === "inbound-rtp" && r.kind === "video") frames = r.framesDecoded || 0;
  });
  return frames;
}"""


async def test_chromium_plays_the_watch_page(agent: Agent) -> None:
    async with chromium_page(MEDIA_ARGS, viewport={"width": 800, "height": 520}) as page:
        errors = script_errors(page)
        await page.goto(agent.base + "/watch/teacher")
        await page.wait_for_function("window.whep !== undefined", timeout=20_000)
        await page.wait_for_function("() => document.querySelector('video').videoWidth > 0", timeout=20_000)
        first = await page.evaluate(FRAMES_DECODED_JS)
        await page.wait_for_function(
            f"async () => ({FRAMES_DECODED_JS})().then((n) => n > {first} + 30)", timeout=20_000
        )
        assert await page.evaluate("document.querySelector('video').videoWidth") == SIZE[0]
        assert await page.text_content("#status") == "正在播放"
        assert agent.service.viewers == 1 and not errors
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(SCREENSHOTS / "watch-teacher.png"))
        await page.close(run_before_unload=True)  # pagehide sends the DELETE
        await until(lambda: agent.service.viewers == 0, 30, "the page's session to end")


async def test_chromium_watch_page_says_why_it_cannot_play(agent: Agent) -> None:
    async with chromium_page(MEDIA_ARGS) as page:
        await page.goto(agent.base + "/watch/nobody")
        await page.wait_for_function("document.querySelector('#status').className === 'bad'", timeout=20_000)
        assert "no live source 'nobody'" in (await page.text_content("#status") or "")


SNOOP_PAGE = """<!doctype html><meta charset="utf-8"><title>another site</title><script>
// What any web page open in the panel's browser could try: watch the classroom over loopback.
async function snoop(url) {
  const pc = new RTCPeerConnection({ iceServers: [] });
  pc.addTransceiver("video", { direction: "recvonly" });
  await pc.setLocalDescription(await pc.createOffer());
  try {
    const response = await fetch(url, { method: "POST", headers: { "Content-Type": "application/sdp" },
                                        body: pc.localDescription.sdp });
    return "status " + response.status;
  } catch (err) {
    return "blocked: " + err.name;
  } finally {
    pc.close();
  }
}
</script>"""


async def test_chromium_page_of_another_site_cannot_watch(agent: Agent) -> None:
    # Two other sites on loopback (a page's own address decides what Chromium lets it reach).
    async def snoop_page(request: web.Request) -> web.Response:
        return web.Response(text=SNOOP_PAGE, content_type="text/html")

    sites = web.Application()
    sites.router.add_get("/page.html", snoop_page)
    site_runner = web.AppRunner(sites)
    await site_runner.setup()
    evil, centre = free_port(), free_port()
    for port in (evil, centre):
        await web.TCPSite(site_runner, "127.0.0.1", port).start()
    service = WhepService(lambda name: agent.encoder, ICE, allowed_origins=[f"http://127.0.0.1:{centre}"])
    base, runner = await serve(service)
    try:
        async with chromium(MEDIA_ARGS) as browser:
            page = await browser.new_page()
            await page.goto(f"http://127.0.0.1:{evil}/page.html")
            assert await page.evaluate("(url) => snoop(url)", base + "/whep/teacher") == "blocked: TypeError"
            assert service.viewers == 0  # the browser's preflight was refused: no offer ever arrived
            await page.goto(f"http://127.0.0.1:{centre}/page.html")  # the centre's dashboard (巡课)
            assert await page.evaluate("(url) => snoop(url)", base + "/whep/teacher") == "status 201"
            assert service.viewers == 1
    finally:
        await runner.cleanup()
        await site_runner.cleanup()


WHIP_PAGE = """<!doctype html><meta charset="utf-8"><title>WHIP publisher</title><script>
// A plain WHIP client (RFC 9725): the browser's fake camera and microphone, one POST of the offer.
async function publish(url) {
  const media = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: true });
  const pc = new RTCPeerConnection();
  for (const track of media.getTracks()) pc.addTransceiver(track, { direction: "sendonly", streams: [media] });
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") return resolve();
    pc.addEventListener("icegatheringstatechange", () => pc.iceGatheringState === "complete" && resolve());
    setTimeout(resolve, 3000);
  });
  const headers = { "Content-Type": "application/sdp" };
  const response = await fetch(url, { method: "POST", headers, body: pc.localDescription.sdp });
  if (response.status !== 201) throw new Error(response.status + " " + (await response.text()));
  await pc.setRemoteDescription({ type: "answer", sdp: await response.text() });
  window.whip = { pc, location: new URL(response.headers.get("Location"), url).href };
  return window.whip.location;
}
</script>"""


async def test_chromium_publishes_over_whip(agent: Agent) -> None:
    async with chromium(MEDIA_ARGS) as browser:
        page = await browser.new_page()
        await page.route("**/publisher.html", lambda route: route.fulfill(body=WHIP_PAGE, content_type="text/html"))
        await page.goto(agent.base + "/publisher.html")  # same origin as the WHIP endpoint
        location = await page.evaluate("(url) => publish(url)", agent.base + "/whip/master-teacher")
        assert "/whip/master-teacher/" in location
        peer = agent.ingested["master-teacher"]
        await until(lambda: any(v.frames > 30 for v in peer.incoming.values()), 30, "the browser's video")
        await until(lambda: any(a.frames > 50 for a in peer.incoming_audio.values()), 30, "the browser's sound")
        (video,) = peer.incoming.values()
        picture = video.latest()
        assert picture is not None and picture.size == (640, 480)
        assert picture.image.std() > 10  # Chromium's fake camera draws a moving pattern, not a blank
        await page.evaluate("fetch(window.whip.location, { method: 'DELETE' })")
        await until(lambda: agent.ended == ["master-teacher"], 10, "the DELETE to end the ingest")


REPO = Path(__file__).resolve().parents[2]
WHIP_CLIENT = REPO / "var" / "whip-web-client" / "whip-client-1.1.7.js"
EYEVINN_PAGE = """<!doctype html><meta charset="utf-8"><title>WHIP publisher (@eyevinn/whip-web-client)</title>
<script src="/whip-client.js"></script><script>
async function publish(endpoint) {
  const media = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: true });
  // No STUN: the client's default is a public server, unreachable (and not to be tried) here.
  window.client = new WhipWebClient.WHIPClient({ endpoint, opts: { iceServers: [], timeout: 3000 } });
  await window.client.ingest(media);
  return await window.client.getResourceUrl();
}
</script>"""


@pytest.fixture(scope="session")
def whip_web_client() -> Path:
    """The browser bundle of @eyevinn/whip-web-client, built from npm by scripts/whip-web-client."""
    if not WHIP_CLIENT.exists():
        build = subprocess.run([str(REPO / "scripts" / "whip-web-client")], capture_output=True, text=True, timeout=300)
        if build.returncode != 0 or not WHIP_CLIENT.exists():
            reason = f"{WHIP_CLIENT} is missing and scripts/whip-web-client failed: {build.stderr.strip()[-300:]}"
            print(f"SKIPPED: {reason}")
            pytest.skip(reason)
    return WHIP_CLIENT


async def test_independent_whip_client_publishes(agent: Agent, whip_web_client: Path) -> None:
    async with chromium(MEDIA_ARGS) as browser:
        page = await browser.new_page()
        page_html = {"body": EYEVINN_PAGE, "content_type": "text/html"}
        await page.route("**/eyevinn.html", lambda route: route.fulfill(**page_html))
        await page.route("**/whip-client.js", lambda route: route.fulfill(path=whip_web_client))
        await page.goto(agent.base + "/eyevinn.html")
        resource = await page.evaluate("(url) => publish(url)", agent.base + "/whip/master-teacher")
        assert resource.startswith(agent.base + "/whip/master-teacher/")
        peer = agent.ingested["master-teacher"]
        await until(lambda: any(v.frames > 30 for v in peer.incoming.values()), 30, "the browser's video")
        (video,) = peer.incoming.values()
        picture = video.latest()
        assert picture is not None and picture.size == (640, 480)
        await page.evaluate("window.client.destroy()")  # the client's own DELETE
        await until(lambda: agent.ended == ["master-teacher"], 10, "the client's DELETE to end the ingest")
