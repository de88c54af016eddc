// 巡课 on the room page: a room's sources watched live in this browser (WHEP through the centre).
"use strict";

// 巡课: plain WHEP through the centre, which relays the offer to the agent (media.watch); the
// picture itself comes from the classroom by ICE.  window.whep is the session now playing.
function watchPanel(agentId) {
  const status = el("p", { id: "watch-status", "data-state": "idle", "aria-live": "polite" }, t("watch_idle"));
  const video = el("video", { id: "watch-video", autoplay: true, playsinline: true, controls: true, hidden: true });
  video.muted = true; // plays without a click on the video; the controls unmute it
  const list = el("div", { class: "row", id: "watch-sources" });
  const other = el("input", { id: "watch-other", size: 18, placeholder: t("watch_other_hint") });
  const stop = el("button", { type: "button", "data-action": "watch-stop", hidden: true }, t("watch_stop"));
  const play = el("button", { type: "button", "data-action": "watch-other" }, t("watch_play"));
  // A dead camera's picture is black: the tile says 无信号 over it, in the viewer's language.
  const noSignal = el("div", { class: "no-signal", id: "watch-no-signal", hidden: true }, t("no_signal"));
  const tile = el("div", { class: "tile" }, video, noSignal);
  const section = el("section", { id: "watch" }, el("h2", {}, t("watch")), el("p", { class: "sub" }, t("watch_note")),
    list, el("div", { class: "row" }, el("label", {}, t("watch_other") + " ", other), play, stop), status, tile);
  let dead = new Set(); // sources the room's latest telemetry says deliver no picture
  let layout = "";
  let session = null; // { pc, location, source }

  function say(state, text, detail) {
    status.dataset.state = state;
    status.className = state === "failed" ? "status-bad" : state === "playing" ? "status-ok" : "";
    status.replaceChildren(...[text, detailToggle(detail)].filter(Boolean));
    showSignal();
  }

  function showSignal() {
    noSignal.hidden = !(session && !video.hidden && dead.has(session.source));
  }

  function gathered(pc) {
    return new Promise((resolve) => {
      if (pc.iceGatheringState === "complete") return resolve();
      pc.addEventListener("icegatheringstatechange", () => pc.iceGatheringState === "complete" && resolve());
      setTimeout(resolve, 5000); // offer what was gathered: the agent's answer carries its own candidates
    });
  }

  // The DELETE goes first: closing the connection first would let the agent end the session by
  // itself, and the DELETE would then find nothing to end.  keepalive: it goes out as the page is left.
  function hangUp(mine) {
    if (!mine.location) return Promise.resolve(mine.pc.close());
    return fetch(mine.location, { method: "DELETE", credentials: "same-origin", keepalive: true })
      .catch(() => {}).finally(() => mine.pc.close());
  }

  async function end(words) {
    const mine = session;
    session = null;
    window.whep = null;
    video.srcObject = null;
    video.hidden = stop.hidden = true;
    if (words) say(words[0], words[1], words[2]);
    if (mine) await hangUp(mine);
  }

  // Why the centre or the agent said no: in words, its own text for the technician.
  async function refusal(response) {
    const error = new Error(response.redirected ? t("watch_login") : "");
    if (response.redirected) return error;
    const key = "watch_http_" + response.status;
    error.message = key in T ? t(key) : t("watch_http_other", { status: response.status });
    error.detail = (await response.text()).trim();
    return error;
  }

  function changed(mine) {
    if (session !== mine) return;
    const state = mine.pc.connectionState;
    const source = sourceName(mine.source);
    if (state === "connected") say("playing", t("watch_playing", { source }));
    if (state === "failed") end(["failed", t("watch_lost", { source, reason: t("watch_no_path") })]);
  }

  async function start(source) {
    if (!source) return;
    await end(null);
    const mine = { pc: new RTCPeerConnection(), location: null, source };
    session = window.whep = mine;
    say("connecting", t("watch_connecting", { source: sourceName(source) }));
    const stream = new MediaStream();
    mine.pc.addTransceiver("video", { direction: "recvonly" });
    mine.pc.addTransceiver("audio", { direction: "recvonly" });
    mine.pc.addEventListener("track", (event) => {
      stream.addTrack(event.track);
      video.srcObject = stream;
    });
    mine.pc.addEventListener("connectionstatechange", () => changed(mine));
    try {
      await mine.pc.setLocalDescription(await mine.pc.createOffer());
      await gathered(mine.pc);
      const url = "/whep/" + encodeURIComponent(agentId) + "/" + encodeURIComponent(source);
      const response = await fetch(url, { method: "POST", headers: { "Content-Type": "application/sdp" },
        credentials: "same-origin", body: mine.pc.localDescription.sdp });
      if (response.status !== 201) throw await refusal(response);
      mine.location = response.headers.get("Location");
      if (session !== mine) return hangUp(mine); // stopped (or another picture chosen) meanwhile
      await mine.pc.setRemoteDescription({ type: "answer", sdp: await response.text() });
      video.hidden = stop.hidden = false;
      showSignal();
    } catch (err) {
      const reason = err instanceof TypeError ? t("watch_network") : err.message;
      const words = t("watch_failed", { source: sourceName(source), reason });
      if (session === mine) await end(["failed", words, err instanceof TypeError ? "" : err.detail]);
      else hangUp(mine);
    }
  }

  stop.addEventListener("click", () => end(["stopped", t("watch_stopped")]));
  play.addEventListener("click", () => start(other.value.trim()));
  window.addEventListener("pagehide", () => session && hangUp(session));

  // The room's own sources: from info when the centre keeps them, else the latest telemetry's.
  function sources(data) {
    const fromInfo = (data.agent.sources || []).map((s) => s.id);
    const latest = (data.telemetry || [])[0] || data.agent.telemetry || {};
    const health = latest.sources || {};
    dead = new Set(Object.keys(health).filter((name) => health[name] && health[name].connected === false));
    showSignal();
    const names = fromInfo.length ? fromInfo : Object.keys(health).sort();
    const shown = JSON.stringify([names, [...dead]]);
    if (shown === layout) return; // rebuilt only when the list changes: playing goes on
    layout = shown;
    list.replaceChildren(...(names.length ? names.map((name) =>
      el("button", { type: "button", "data-action": "watch", "data-source": name, onclick: () => start(name) },
        t("watch_play") + " " + sourceName(name) + (dead.has(name) ? "（" + t("no_signal") + "）" : "")))
      : [el("span", { class: "empty" }, t("watch_none"))]));
  }

  return { section, sources };
}

