// One classroom: its devices with their controls, the outcome of commands, alarms, history.
"use strict";

(() => {
  const main = document.getElementById("main");
  const agentId = BOOT.data.agent_id;
  const back = el("p", { class: "back" }, el("a", { href: "/" }, t("back")));

  if (!BOOT.data.agent) {
    main.replaceChildren(back, el("h1", {}, t("room_not_found")), el("p", { class: "sub" }, agentId));
    return;
  }

  const SOURCES = ["hdmi1", "hdmi2", "hdmi3", "displayport", "vga", "usbc1", "ops", "android"];
  const header = el("section", { class: "room-head", id: "room-head" });
  const outcomes = el("ul", { class: "outcomes", id: "outcomes", "aria-live": "polite" });
  const devices = el("div", { class: "cards", id: "devices" });
  const tables = el("div", { class: "tables" });
  const player = el("div", { class: "player", id: "player" }); // outside `tables`: live updates keep it playing
  let deviceLayout = "";
  let current = BOOT.data;
  const watch = watchPanel();

  async function send(name, args, button) {
    const line = el("li", { class: "outcome pending" }, t("sending", { name: commandName(name) }));
    outcomes.prepend(line);
    while (outcomes.children.length > 5) outcomes.lastChild.remove();
    if (button) button.disabled = true;
    try {
      const reply = await postJSON("/api/agents/" + encodeURIComponent(agentId) + "/commands", { name, args });
      const status = reply.data.status || (reply.ok ? "succeeded" : "failed");
      line.textContent = outcomeWords(name, { status, result: reply.data.result, error: reply.data.error });
      line.className = "outcome status-" + (status === "succeeded" ? "ok" : "bad");
      line.dataset.status = status;
    } catch (err) {
      line.textContent = t("error_network");
      line.className = "outcome status-bad";
    } finally {
      if (button) button.disabled = false;
    }
  }

  function button(action, label, name, args) {
    const node = el("button", { type: "button", "data-action": action }, label);
    node.addEventListener("click", () => send(name, typeof args === "function" ? args() : args, node));
    return node;
  }

  function numberInput(cls, min, max, value) {
    return el("input", { type: "number", class: cls, min, max, value, step: 1 });
  }

  function displayControls(id) {
    const dev = { device: id };
    const source = el("input", { class: "source", list: "sources", size: 10, value: "hdmi1" });
    const level = numberInput("level", 0, 100, 30);
    return el("div", { class: "controls" },
      el("div", { class: "row" },
        button("power_on", t("power_on"), "panel.power", { ...dev, on: true }),
        button("power_off", t("power_off"), "panel.power", { ...dev, on: false }),
        button("mute_on", t("mute_on"), "panel.mute", { ...dev, on: true }),
        button("mute_off", t("mute_off"), "panel.mute", { ...dev, on: false })),
      el("div", { class: "row" }, source,
        button("input", t("input"), "panel.input", () => ({ ...dev, source: source.value.trim() }))),
      el("div", { class: "row" }, level,
        button("volume", t("set_volume"), "panel.volume", () => ({ ...dev, level: Number(level.value) }))));
  }

  function cameraControls(id) {
    const dev = { device: id };
    const preset = numberInput("preset", 0, 255, 1);
    const speed = numberInput("speed", 1, 24, 8);
    const move = (direction) =>
      button("move_" + direction, t("move_" + direction), "camera.move",
        () => ({ ...dev, direction, speed: Number(speed.value) }));
    return el("div", { class: "controls" },
      el("div", { class: "row" }, el("label", {}, t("preset") + " ", preset),
        button("preset_recall", t("preset_recall"), "camera.preset.recall", () => ({ ...dev, preset: Number(preset.value) })),
        button("preset_save", t("preset_save"), "camera.preset.save", () => ({ ...dev, preset: Number(preset.value) }))),
      el("div", { class: "row pad" }, move("up"), move("down"), move("left"), move("right"),
        button("move_stop", t("move_stop"), "camera.stop", dev),
        el("label", {}, t("speed") + " ", speed)),
      el("div", { class: "row" },
        button("zoom_tele", t("zoom_tele"), "camera.zoom", { ...dev, direction: "tele" }),
        button("zoom_wide", t("zoom_wide"), "camera.zoom", { ...dev, direction: "wide" }),
        button("zoom_stop", t("zoom_stop"), "camera.zoom", { ...dev, direction: "stop" })));
  }

  function card(device) {
    let controls = null;
    if (BOOT.can_command && device.kind === "display") controls = displayControls(device.id);
    if (BOOT.can_command && device.kind === "camera") controls = cameraControls(device.id);
    return el("section", { class: "card", "data-device": device.id, "data-kind": device.kind },
      el("h3", {}, tr("kind_", device.kind) + " " + device.id, " ", el("span", { class: "sub" }, device.profile)),
      el("p", { class: "device-state" }),
      el("p", { class: "sub device-ts" }),
      controls);
  }

  function renderDevices(list) {
    const layout = JSON.stringify(list.map((d) => [d.id, d.kind, d.profile]));
    if (layout !== deviceLayout) {
      // Controls are built once per device list, so typing in them survives live updates.
      devices.replaceChildren(...list.map(card));
      deviceLayout = layout;
    }
    for (const device of list) {
      const node = [...devices.children].find((c) => c.dataset.device === device.id);
      const state = node.querySelector(".device-state");
      state.textContent = deviceWords(device);
      state.className = "device-state" + (device.online === false ? " device-offline" : "");
      node.querySelector(".device-ts").replaceChildren(when(device.ts));
    }
  }

  // Messages from this room that broke the contract: how many, the last reason and when.
  function dropped(agent) {
    const count = agent.dropped || 0;
    const last = count ? [" · ", agent.dropped_reason || "", " · ", when(agent.dropped_ts)] : [];
    return el("div", { id: "dropped" }, el("dt", {}, t("dropped")), el("dd", {}, String(count), ...last));
  }

  function renderHeader(agent) {
    const item = (key, value) => el("div", {}, el("dt", {}, t(key)), el("dd", {}, value));
    header.replaceChildren(
      el("h1", { id: "room-name" }, agent.room || agent.agent_id, " ", stateBadge(agent.state)),
      el("dl", { class: "facts" },
        item("site", agent.site), item("agent", agent.agent_id), item("hostname", agent.hostname || "—"),
        item("version", agent.version || "—"), item("since", when(agent.since)),
        item("last_seen", when(agent.last_seen)), item("session", agent.session),
        item("open_alarms", String(agent.open_alarms)), dropped(agent)));
    document.title = (agent.room || agent.agent_id) + " · " + t("title");
  }

  function table(id, title, columns, rows, cells, footer) {
    const body = rows.length
      ? el("table", { class: "list" }, el("thead", {}, el("tr", {}, columns.map((c) => el("th", {}, t(c))))),
          el("tbody", {}, rows.map((r) => el("tr", {}, cells(r).map((c) => el("td", {}, c))))))
      : el("p", { class: "empty" }, t("no_rows"));
    return el("section", { id }, el("h2", {}, title), body, footer);
  }

  // Alarms and the command log come a page at a time: "more" asks for the page after the last row
  // shown, and a live refresh keeps that many rows (paged[kind] beyond the first page).
  const paged = { alarms: 0, commands: 0 };
  const MAX_PAGE = 500;

  function pageURL(kind, query) {
    return "/api/agents/" + encodeURIComponent(agentId) + "/" + kind + "?" + query;
  }

  function moreButton(kind, data) {
    if (!data[kind + "_more"]) return null;
    const rows = data[kind];
    const node = el("button", { type: "button", class: "more", "data-more": kind }, t("more"));
    node.addEventListener("click", async () => {
      node.disabled = true;
      const page = await getJSON(pageURL(kind, "before=" + encodeURIComponent(rows[rows.length - 1].id)));
      paged[kind] += page[kind].length;
      render({ ...current, [kind]: rows.concat(page[kind]), [kind + "_more"]: page.more });
    });
    return node;
  }

  function ackCell(alarm) {
    if (alarm.acked_by) return t("acked", { user: alarm.acked_by });
    if (!BOOT.can_command) return "—";
    const node = el("button", { type: "button", "data-action": "ack" }, t("ack"));
    node.addEventListener("click", async () => {
      node.disabled = true;
      const reply = await postJSON("/api/alarms/" + encodeURIComponent(alarm.id) + "/ack", {});
      if (!reply.ok) node.replaceWith(reply.data.error || t("error_forbidden"));
      else refresh();
    });
    return node;
  }

  // A watch's SDP and session token are for the browser, not for people reading the log.
  function brief(fields) {
    if (!fields || typeof fields !== "object") return fields;
    return Object.fromEntries(Object.entries(fields).filter(([key]) => !["offer", "answer", "session"].includes(key)));
  }

  function bracketed(words) {
    return words ? "（" + words + "）" : "";
  }

  function commandOutcome(c) {
    const words = [tr("status_", c.status)];
    if (c.result !== null && c.result !== undefined) words.push(fieldsWords(brief(c.result)));
    if (c.error) words.push(c.error);
    return el("span", { class: "status-" + (c.status === "succeeded" ? "ok" : c.status === "sent" ? "wait" : "bad") },
      words.filter(Boolean).join(" — "));
  }

  function telemetryCells(s) {
    const temps = Object.values(s.temperatures || {});
    const pct = (v) => (typeof v === "number" ? v.toFixed(0) + " %" : "—");
    return [
      when(s.ts), pct(s.cpu_percent), pct(s.memory_percent), pct(s.disk_percent),
      typeof s.disk_free_bytes === "number" ? (s.disk_free_bytes / 1e9).toFixed(1) + " GB" : "—",
      temps.length ? Math.max(...temps).toFixed(0) + " °C" : "—",
      typeof s.uptime_s === "number" ? (s.uptime_s / 3600).toFixed(1) + " h" : "—",
    ];
  }

  function playCell(r) {
    const node = el("button", { type: "button", "data-action": "play", "data-url": r.url }, t("play"));
    node.addEventListener("click", () => {
      const video = el("video", { controls: true, preload: "metadata", src: r.url });
      player.replaceChildren(el("p", {}, r.lesson || r.recording_id, " ",
        el("button", { type: "button", onclick: () => player.replaceChildren() }, t("close_player"))), video);
      video.play().catch(() => {});
    });
    return node;
  }

  // 直播中: the room's push to a platform as its newest telemetry reports it (target, health, gaps).
  function onAir(latest) {
    const b = (latest || {}).broadcast;
    if (!b || !b.active) return el("p", { id: "broadcast", hidden: true });
    const gaps = b.gaps ? [" · ", t("broadcast_gaps", { gaps: b.gaps, seconds: b.down_s })] : [];
    return el("p", { id: "broadcast", class: b.state === "live" ? "status-ok" : "status-bad", "data-health": b.state },
      t("broadcast_now", { target: b.target }), " · ", tr("broadcast_", b.state), ...gaps);
  }

  // The live lesson as the agent's newest telemetry reports it: mode, role, and each peer's link.
  function liveLesson(latest) {
    const lesson = (latest || {}).lesson;
    if (!lesson || !lesson.active) {
      return el("section", { id: "lesson" },
        el("h2", {}, t("live_lesson")), el("p", { class: "empty" }, t("live_lesson_none")));
    }
    const num = (v, digits, unit) => (typeof v === "number" ? v.toFixed(digits) + unit : "—");
    const peers = Object.entries(lesson.peers || {}).map(([name, p]) => ({ name, ...p }));
    const section = table("lesson", t("live_lesson"),
      ["peer", "state", "peer_since", "rtt", "loss", "bitrate", "frames"], peers,
      (p) => [p.name,
        el("span", { class: p.state === "connected" ? "status-ok" : "status-bad", "data-peer-state": p.state },
          tr("peer_state_", p.state) + (p.reason ? "（" + p.reason + "）" : "")),
        when(p.since), num(p.rtt_ms, 0, " ms"), num(typeof p.loss === "number" ? p.loss * 100 : null, 1, " %"),
        num(p.bitrate_in_kbps, 0, "") + " / " + num(p.bitrate_out_kbps, 0, " kbps"),
        (p.frames_sent ?? "—") + " / " + (p.frames_received ?? "—")]);
    section.querySelector("h2").after(el("p", { class: "sub", id: "lesson-head" },
      t("live_lesson_head", { mode: tr("lesson_mode_", lesson.mode), role: tr("lesson_role_", lesson.role),
        since: fmtTime(lesson.since) }), " · ", when(latest.ts)));
    return section;
  }

  // 巡课: plain WHEP through the centre, which relays the offer to the agent (media.watch); the
  // picture itself comes from the classroom by ICE.  window.whep is the session now playing.
  function watchPanel() {
    const status = el("p", { id: "watch-status", "data-state": "idle", "aria-live": "polite" }, t("watch_idle"));
    const video = el("video", { id: "watch-video", autoplay: true, playsinline: true, controls: true, hidden: true });
    video.muted = true; // plays without a click on the video; the controls unmute it
    const list = el("div", { class: "row", id: "watch-sources" });
    const other = el("input", { id: "watch-other", size: 18, placeholder: t("watch_other_hint") });
    const stop = el("button", { type: "button", "data-action": "watch-stop", hidden: true }, t("watch_stop"));
    const play = el("button", { type: "button", "data-action": "watch-other" }, t("watch_play"));
    const section = el("section", { id: "watch" }, el("h2", {}, t("watch")), el("p", { class: "sub" }, t("watch_note")),
      list, el("div", { class: "row" }, el("label", {}, t("watch_other") + " ", other), play, stop), status, video);
    let layout = "";
    let session = null; // { pc, location, source }

    function say(state, text) {
      status.dataset.state = state;
      status.className = state === "failed" ? "status-bad" : state === "playing" ? "status-ok" : "";
      status.textContent = text;
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
      if (words) say(words[0], words[1]);
      if (mine) await hangUp(mine);
    }

    async function refusal(response) {
      if (response.redirected) return t("watch_login");
      const reason = (await response.text()).trim();
      const key = "watch_http_" + response.status;
      const head = key in T ? t(key) : t("watch_http_other", { status: response.status });
      return reason ? head + "（" + reason + "）" : head;
    }

    function changed(mine) {
      if (session !== mine) return;
      const state = mine.pc.connectionState;
      if (state === "connected") say("playing", t("watch_playing", { source: mine.source }));
      if (state === "failed") end(["failed", t("watch_lost", { source: mine.source, reason: t("watch_no_path") })]);
    }

    async function start(source) {
      if (!source) return;
      await end(null);
      const mine = { pc: new RTCPeerConnection(), location: null, source };
      session = window.whep = mine;
      say("connecting", t("watch_connecting", { source }));
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
        if (response.status !== 201) throw new Error(await refusal(response));
        mine.location = response.headers.get("Location");
        if (session !== mine) return hangUp(mine); // stopped (or another picture chosen) meanwhile
        await mine.pc.setRemoteDescription({ type: "answer", sdp: await response.text() });
        video.hidden = stop.hidden = false;
      } catch (err) {
        const reason = err instanceof TypeError ? t("watch_network") : err.message;
        if (session === mine) await end(["failed", t("watch_failed", { source, reason })]);
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
      const names = fromInfo.length ? fromInfo : Object.keys(latest.sources || {}).sort();
      if (JSON.stringify(names) === layout) return; // rebuilt only when the list changes: playing goes on
      layout = JSON.stringify(names);
      list.replaceChildren(...(names.length ? names.map((name) =>
        el("button", { type: "button", "data-action": "watch", "data-source": name, onclick: () => start(name) },
          t("watch_play") + " " + name)) : [el("span", { class: "empty" }, t("watch_none"))]));
    }

    return { section, sources };
  }

  function size(bytes) {
    return bytes >= 1e9 ? (bytes / 1e9).toFixed(2) + " GB" : (bytes / 1e6).toFixed(1) + " MB";
  }

  function render(data) {
    current = data;
    renderHeader(data.agent);
    renderDevices(data.agent.devices || []);
    watch.sources(data);
    tables.replaceChildren(
      onAir((data.telemetry || [])[0]),
      liveLesson((data.telemetry || [])[0]),
      table("recordings", t("recordings"), ["lesson", "time", "size", "play"], data.recordings || [],
        (r) => [r.lesson || r.recording_id, when(r.started || r.received), size(r.size), playCell(r)]),
      table("alarms", t("alarms"), ["time", "severity", "type", "device", "message", "state", "ack"], data.alarms,
        (a) => [when(a.raised_ts), tr("severity_", a.severity), tr("alarm_", a.type), a.device || "—", a.message,
          a.cleared_ts ? t("cleared") : t("open"), ackCell(a)], moreButton("alarms", data)),
      table("commands", t("commands"), ["time", "command", "by", "result"], data.commands,
        (c) => [when(c.sent_ts), commandName(c.name) + bracketed(fieldsWords(brief(c.args))), c.by, commandOutcome(c)],
        moreButton("commands", data)),
      table("history", t("history"), ["time", "state", "session"], data.status_history,
        (h) => [when(h.ts), stateBadge(h.state), h.session]),
      table("telemetry", t("telemetry"), ["time", "cpu", "memory", "disk", "disk_free", "temperature", "uptime"],
        data.telemetry, telemetryCells));
  }

  async function refresh() {
    const data = await getJSON("/api/agents/" + encodeURIComponent(agentId));
    for (const kind of ["alarms", "commands"]) {
      if (!paged[kind]) continue;
      const page = await getJSON(pageURL(kind, "limit=" + Math.min(MAX_PAGE, data[kind].length + paged[kind])));
      data[kind] = page[kind];
      data[kind + "_more"] = page.more;
    }
    render(data);
  }

  const top = [back, header];
  if (BOOT.can_command) {
    top.push(el("div", { class: "row" }, button("ping", t("agent_ping"), "agent.ping", {})));
  } else {
    top.push(el("p", { class: "note" }, t("viewer_note")));
  }
  main.replaceChildren(...top, outcomes, el("h2", {}, t("devices")), devices, watch.section, player, tables,
    el("datalist", { id: "sources" }, SOURCES.map((s) => el("option", { value: s }))));
  render(BOOT.data);
  listen("?agent=" + encodeURIComponent(agentId), refresh, refresh);
  setInterval(() => render(current), 30000); // keeps "… ago" true
})();
