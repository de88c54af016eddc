// The live lesson on the classroom page: this room's outgoing picture and the other classrooms'
// pictures (all played over WHEP), sized so that every one fits on the screen without scrolling,
// each link's quality, and muting this room's sound (ending the lesson is page.js's big button).
// Text nodes only.
"use strict";

(() => {
  const section = document.getElementById("lesson");
  const PICTURES_EVERY_MS = 2000;
  const GAP_PX = 12; // between pictures: .videos's gap
  const MARGIN_PX = 16; // below the pictures, to the screen's edge
  let shown = null; // the lesson id on screen
  let tiles = new Map(); // picture name -> { node, stream, stop() }
  let grid = null;
  let peersList = null;
  let roomMuted = false; // this room's outgoing sound (lesson.mute)
  let timer = null;
  const rooms = {}; // agent id -> room name, from lesson.peers

  // This room's outgoing sound, for every other classroom at once (the command table's lesson.mute):
  // a big button beside the one that ends the lesson.
  const muteButton = el("button", { type: "button", class: "big action mute", "data-action": "mute", hidden: true });
  const muteNote = el("p", { class: "muted-note", role: "status", hidden: true }, t("room_muted"));
  muteButton.addEventListener("click", async () => {
    const reply = await send("lesson.mute", { on: !roomMuted });
    if (reply.status === "succeeded") showMuted(reply.result.muted);
  });
  bigButtons.record.before(muteButton);

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
    const room = t("remote_view", { room: rooms[agent] || agent });
    return source === "courseware" ? room + " · " + t("courseware") : room;
  }

  // Every picture on the screen at once: the columns that make the pictures largest while all of
  // them fit between the top of the grid and the bottom of the window (16:9 each).
  function fit() {
    if (!grid || section.hidden) return;
    const count = grid.children.length;
    if (!count) return;
    const top = grid.getBoundingClientRect().top + window.scrollY;
    const height = Math.max(160, window.innerHeight - top - MARGIN_PX);
    const width = grid.clientWidth;
    let best = { columns: 1, size: 0 };
    for (let columns = 1; columns <= count; columns++) {
      const rows = Math.ceil(count / columns);
      const across = (width - GAP_PX * (columns - 1)) / columns;
      const down = ((height - GAP_PX * (rows - 1)) / rows) * 16 / 9;
      const size = Math.min(across, down);
      if (size > best.size) best = { columns, size };
    }
    grid.style.gridTemplateColumns = "repeat(" + best.columns + ", " + Math.floor(best.size) + "px)";
  }
  window.addEventListener("resize", fit);
  // Whatever above the pictures grows or shrinks (an outcome line, the recording banner) moves them.
  const above = new ResizeObserver(() => fit());
  for (const id of ["now", "actions", "recording", "outcomes"]) above.observe(document.getElementById(id));
  above.observe(muteNote);

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
    // The main classroom's own pictures before its courseware (a remote classroom's first tile is the teacher).
    const order = (name) => (name.endsWith("/courseware") ? "1" : "0") + name;
    for (const name of Object.keys(pictures).sort((a, b) => order(a).localeCompare(order(b)))) {
      if (tiles.has(name)) continue;
      const main = lesson.role === "remote" && !name.endsWith("/courseware");
      const entry = tile(main ? "remote main" : "remote", name, pictureCaption(name, lesson), pictures[name].stream);
      tiles.set(name, entry);
      grid.append(entry.node);
    }
    fit();
  }

  // The other classrooms' room names (a teacher knows 村小 三年级, not its agent id).
  async function learnRooms(lesson) {
    const reply = await send("lesson.peers", {}, { quiet: true });
    if (reply.status !== "succeeded" || shown !== lesson.id) return;
    for (const [agent, peer] of Object.entries(reply.result.peers || {})) if (peer.room) rooms[agent] = peer.room;
    for (const [name, entry] of tiles) {
      if (name.includes("/")) entry.node.querySelector(".who").textContent = pictureCaption(name, lesson);
    }
    updatePeers(lesson);
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
    const head = el("div", { class: "lesson-head" },
      el("h2", {}, t("mode_" + lesson.mode), " · ", t("role_" + lesson.role)));
    grid = el("div", { class: "videos " + (lesson.role === "remote" ? "single" : "grid") });
    peersList = el("ul", { class: "peers" });
    const own = (lesson.sources || [])[0];
    const mine = own ? tile("self", own, t("self_view")) : null;
    if (mine) tiles.set(own, mine);
    // Pictures take the width; this room's own picture and the links sit beside them.
    const aside = el("aside", { class: "lesson-side" }, mine ? mine.node : null, peersList);
    section.replaceChildren(head, muteNote, el("div", { class: "lesson-body" }, grid, aside));
    showMuted(Boolean(lesson.muted));
    refreshPictures(lesson);
    learnRooms(lesson);
    timer = setInterval(() => refreshPictures(lesson), PICTURES_EVERY_MS);
  }

  function quality(peer) {
    const rtt = typeof peer.rtt_ms === "number" ? Math.round(peer.rtt_ms) : "—";
    const loss = typeof peer.loss === "number" ? (peer.loss * 100).toFixed(1) + " %" : "—";
    return t("link_quality", { rtt, loss });
  }

  // Each link in words; the technical reason of a lost or refused one behind 技术信息.
  function updatePeers(lesson) {
    const peers = Object.entries(lesson.peers || {});
    peersList.replaceChildren(...peers.map(([agent, peer]) => {
      const state = peer.state || "new";
      return el("li", { class: "peer peer-" + state, "data-peer": agent, "data-state": peer.state || "" },
        el("b", {}, rooms[agent] || agent), " ", "peer_" + state in T ? T["peer_" + state] : t("peer_connecting"),
        state === "connected" ? " · " + quality(peer) : "",
        peer.reason ? el("details", { class: "detail" }, el("summary", {}, t("detail")), peer.reason) : null);
    }));
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
      muteButton.hidden = muteNote.hidden = true;
      document.body.classList.remove("in-lesson");
      return;
    }
    section.hidden = false;
    muteButton.hidden = !LAYOUT.can_mute; // a room that sends no sound has nothing to mute
    document.body.classList.add("in-lesson");
    if (shown !== lesson.id) build(lesson);
    else if (typeof lesson.muted === "boolean" && lesson.muted !== roomMuted) showMuted(lesson.muted);
    updatePeers(lesson);
  });
  render(view); // the boot view may already be in a lesson
})();
