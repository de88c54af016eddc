// The live lesson on the classroom page: this room's outgoing picture and the other classrooms'
// pictures (all played over WHEP), each link's quality, muting this room's sound, and a clear
// stop. Text nodes only.
"use strict";

(() => {
  const section = document.getElementById("lesson");
  const PICTURES_EVERY_MS = 2000;
  let shown = null; // the lesson id on screen
  let tiles = new Map(); // picture name -> { node, stream, stop() }
  let grid = null;
  let peersList = null;
  let muteButton = null;
  let muteNote = null;
  let roomMuted = false; // this room's outgoing sound (lesson.mute)
  let timer = null;

  function gathered(pc, ms) {
    // aiortc does not trickle: the offer goes once its candidates are in (or after `ms`).
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      pc.addEventListener("icegatheringstatechange", () => { if (pc.iceGatheringState === "complete") resolve(); });
      setTimeout(resolve, ms);
    });
  }

  // WHEP: POST the offer, set the answer; DELETE the session's Location when done. Null on refusal.
  // A received picture's name holds a "/": escaped, it stays one path segment.
  async function whep(source, video) {
    const pc = new RTCPeerConnection({ iceServers: [] });
    const stream = new MediaStream();
    pc.addTransceiver("video", { direction: "recvonly" });
    pc.addTransceiver("audio", { direction: "recvonly" });
    pc.ontrack = (event) => stream.addTrack(event.track);
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc, 3000);
    const response = await fetch("/whep/" + encodeURIComponent(source), {
      method: "POST", headers: { "Content-Type": "application/sdp" }, body: pc.localDescription.sdp,
    });
    if (response.status !== 201) {
      pc.close();
      return null;
    }
    const session = new URL(response.headers.get("Location"), location.href);
    await pc.setRemoteDescription({ type: "answer", sdp: await response.text() });
    video.srcObject = stream;
    video.play().catch(() => {});
    return () => {
      pc.close();
      fetch(session, { method: "DELETE", keepalive: true }).catch(() => {});
    };
  }

  // The newest received picture, fetched again as soon as the last one is shown (a few per second).
  function snapshots(name, img) {
    let running = true;
    let url = null;
    const [agent, source] = name.split("/");
    const path = "/api/lesson/pictures/" + encodeURIComponent(agent) + "/" + encodeURIComponent(source) + ".png";
    (async () => {
      while (running) {
        try {
          const response = await fetch(path, { cache: "no-store" });
          if (response.ok) {
            const blob = await response.blob();
            if (url) URL.revokeObjectURL(url);
            url = URL.createObjectURL(blob);
            img.src = url;
            img.dataset.frame = response.headers.get("X-Frame-Index") || "";
            await img.decode().catch(() => {});
          }
        } catch (err) { /* the next round tries again */ }
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    })();
    return () => { running = false; if (url) URL.revokeObjectURL(url); };
  }

  // A received picture shows as PNG snapshots at once, and as video as soon as its stream plays
  // (the snapshots stay when the agent cannot stream it).
  function tile(cls, name, caption, stream) {
    const video = el("video", { autoplay: true, playsinline: true, muted: true });
    video.muted = true;
    const node = el("figure", { class: "tile " + cls, "data-picture": name }, video,
      el("figcaption", { class: "caption" }, el("span", { class: "who" }, caption), el("span", { class: "quality" })));
    const entry = { node, stream, stopVideo: () => {}, stopSnapshots: () => {} };
    entry.stop = () => { entry.stopVideo(); entry.stopSnapshots(); };
    const received = name.includes("/");
    if (received) {
      const img = el("img", { alt: caption });
      video.hidden = true;
      video.before(img);
      entry.stopSnapshots = snapshots(name, img);
      video.addEventListener("playing", () => {
        entry.stopSnapshots();
        entry.stopSnapshots = () => {};
        img.remove();
        video.hidden = false;
      }, { once: true });
    }
    whep(name, video).then((stop) => { if (stop) entry.stopVideo = stop; }).catch(() => {});
    return entry;
  }

  function stopAll() {
    for (const entry of tiles.values()) entry.stop();
    tiles = new Map();
    if (timer) clearInterval(timer);
    timer = null;
  }

  function pictureCaption(name, lesson) {
    const [agent, source] = name.split("/");
    if (lesson.role === "remote") return source === "courseware" ? t("courseware") : t("main_view");
    return t("remote_view", { room: agent }) + " · " + source;
  }

  async function refreshPictures(lesson) {
    let pictures = {};
    try {
      const response = await fetch("/api/lesson/pictures", { cache: "no-store" });
      pictures = (await response.json()).pictures || {};
    } catch (err) {
      return;
    }
    for (const [name, entry] of tiles) {
      if (!name.includes("/")) continue; // this room's own picture stays
      const now = pictures[name];
      if (now && now.stream === entry.stream) continue;
      // Gone, or arrived anew (the link was renegotiated): the old stream has ended.
      entry.stop();
      entry.node.remove();
      tiles.delete(name);
    }
    for (const name of Object.keys(pictures).sort()) {
      if (tiles.has(name)) continue;
      const main = lesson.role === "remote" && !name.endsWith("/courseware");
      const entry = tile(main ? "remote main" : "remote", name, pictureCaption(name, lesson), pictures[name].stream);
      tiles.set(name, entry);
      grid.append(entry.node);
    }
  }

  function showMuted(on) {
    roomMuted = Boolean(on);
    muteButton.textContent = roomMuted ? t("unmute_room") : t("mute_room");
    muteButton.setAttribute("aria-pressed", String(roomMuted));
    muteButton.classList.toggle("on", roomMuted);
    muteNote.hidden = !roomMuted;
    section.dataset.muted = String(roomMuted);
  }

  function build(lesson) {
    stopAll();
    shown = lesson.id;
    const head = el("div", { class: "lesson-head row" },
      el("h2", {}, t("mode_" + lesson.mode), " · ", t("role_" + lesson.role)));
    // This room's outgoing sound, for every other classroom at once (the command table's lesson.mute).
    muteButton = el("button", { type: "button", class: "big mute", "data-action": "mute" });
    muteNote = el("p", { class: "muted-note", role: "status" }, t("room_muted"));
    muteButton.addEventListener("click", async () => {
      const reply = await send("lesson.mute", { on: !roomMuted });
      if (reply.status === "succeeded") showMuted(reply.result.muted);
    });
    muteButton.hidden = !LAYOUT.can_mute; // a room that sends no sound has nothing to mute
    const stop = el("button", { type: "button", class: "big end", "data-action": "stop-lesson" }, t("stop_lesson"));
    stop.addEventListener("click", () => send("lesson.stop", {}));
    head.append(muteButton, stop);
    grid = el("div", { class: "videos " + (lesson.role === "remote" ? "single" : "grid") });
    peersList = el("ul", { class: "peers" });
    const own = (lesson.sources || [])[0];
    const mine = own ? tile("self", own, t("self_view") + " · " + own) : null;
    if (mine) tiles.set(own, mine);
    // Pictures take the width; this room's own picture and the links sit beside them.
    const aside = el("aside", { class: "lesson-side" }, mine ? mine.node : null, peersList);
    section.replaceChildren(head, muteNote, el("div", { class: "lesson-body" }, grid, aside));
    showMuted(Boolean(lesson.muted));
    refreshPictures(lesson);
    timer = setInterval(() => refreshPictures(lesson), PICTURES_EVERY_MS);
  }

  function quality(peer) {
    const rtt = typeof peer.rtt_ms === "number" ? Math.round(peer.rtt_ms) : "—";
    const loss = typeof peer.loss === "number" ? (peer.loss * 100).toFixed(1) + " %" : "—";
    return t("link_quality", { rtt, loss });
  }

  function updatePeers(lesson) {
    const peers = Object.entries(lesson.peers || {});
    peersList.replaceChildren(...peers.map(([agent, peer]) =>
      el("li", { class: "peer peer-" + (peer.state || "new"), "data-peer": agent, "data-state": peer.state || "" },
        el("b", {}, agent), " ", t("peer_" + (peer.state || "connecting")), " · ", quality(peer),
        peer.reason ? " · " + peer.reason : "")));
    for (const [name, entry] of tiles) {
      const peer = (lesson.peers || {})[name.split("/")[0]];
      if (peer) entry.node.querySelector(".quality").textContent = quality(peer);
    }
  }

  VIEW_HOOKS.push((view) => {
    const lesson = view.lesson;
    if (!lesson || !lesson.active) {
      if (shown !== null) stopAll();
      shown = null;
      section.hidden = true;
      document.body.classList.remove("in-lesson");
      return;
    }
    section.hidden = false;
    document.body.classList.add("in-lesson");
    if (shown !== lesson.id) build(lesson);
    else if (typeof lesson.muted === "boolean" && lesson.muted !== roomMuted) showMuted(lesson.muted);
    updatePeers(lesson);
  });
  render(view); // the boot view may already be in a lesson
})();
