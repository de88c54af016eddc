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
  const PROJECTOR_SOURCES = ["digital1", "digital2", "rgb1", "rgb2", "video1", "network1", "storage1"];
  const header = el("section", { class: "room-head", id: "room-head" });
  const outcomes = el("ul", { class: "outcomes", id: "outcomes", "aria-live": "polite" });
  const devices = el("div", { class: "cards", id: "devices" });
  const staleNote = el("p", { class: "note", id: "stale-note", hidden: true }, t("stale_room"));
  const tables = el("div", { class: "tables" });
  const player = el("div", { class: "player", id: "player" }); // outside `tables`: live updates keep it playing
  let deviceLayout = "";
  let current = BOOT.data;
  const watch = watchPanel(agentId);

  // One request from a button: a line in `outcomes` says it is on its way, then how it ended, in
  // words (words() -> {words, detail}), the technical text behind a toggle.
  async function post(label, path, body, button, words, quiet) {
    const line = el("li", { class: "outcome pending" }, t("sending", { name: label }));
    if (!quiet) outcomes.prepend(line);
    while (outcomes.children.length > 5) outcomes.lastChild.remove();
    if (button) button.disabled = true;
    try {
      const reply = await postJSON("/api/agents/" + encodeURIComponent(agentId) + path, body);
      const status = reply.data.status || (reply.ok ? "succeeded" : "failed");
      const said = words(status, reply.data);
      line.replaceChildren(...[t("outcome", { name: label, status: said.words }), detailToggle(said.detail)].filter(Boolean));
      line.className = "outcome status-" + (status === "succeeded" ? "ok" : "bad");
      line.dataset.status = status;
      if (quiet && status !== "succeeded") outcomes.prepend(line);
      return status === "succeeded" ? reply.data.result : null;
    } catch (err) {
      line.textContent = t("error_network");
      line.className = "outcome status-bad";
      if (quiet) outcomes.prepend(line);
      return null;
    } finally {
      if (button) button.disabled = false;
    }
  }

  // `quiet`: a line only when it fails (a held camera button sends many).
  function send(name, args, button, quiet) {
    return post(commandName(name), "/commands", { name, args }, button,
      (status, data) => outcomeParts(name, { ...data, status }), quiet);
  }

  // The PC itself: woken through another agent of its site (its own sleeps with it), or shut down
  // and restarted by its OS (refused during a lesson or a recording unless forced).
  function powerControls() {
    const force = el("input", { type: "checkbox", id: "power-force" });
    const wake = el("button", { type: "button", "data-action": "wake" }, t("wake_pc"));
    wake.addEventListener("click", () => post(t("wake_pc"), "/wake", {}, wake, (status, data) => {
      const said = outcomeParts("power.wake", { ...data, status, result: null });
      return { words: said.words + (data.via ? " — " + t("wake_via", { via: roomName(data.via) }) : ""), detail: said.detail };
    }));
    const guarded = (action, name, args) => {
      const node = el("button", { type: "button", "data-action": action }, t(action + "_pc"));
      node.addEventListener("click", () => {
        if (window.confirm(t("confirm_" + action, { room: current.agent.room || agentId }))) {
          send(name, { ...args, force: force.checked }, node);
        }
      });
      return node;
    };
    return el("div", { class: "row", id: "power" }, wake, guarded("shutdown", "agent.shutdown", { delay_s: 60 }),
      guarded("reboot", "agent.reboot", {}), el("label", {}, force, " " + t("power_force")));
  }

  function button(action, label, name, args) {
    const node = el("button", { type: "button", "data-action": action }, label);
    node.addEventListener("click", () => send(name, typeof args === "function" ? args() : args, node));
    return node;
  }

  function numberInput(cls, min, max, value) {
    return el("input", { type: "number", class: cls, min, max, value, step: 1 });
  }

  // A display's inputs by their label (HDMI 1, 电脑(OPS)), as its profile names them; the current one chosen.
  function inputSelect(device, projector) {
    const inputs = device.inputs && device.inputs.length ? device.inputs : projector ? PROJECTOR_SOURCES : SOURCES;
    const state = device.state || {};
    const current = state.source || state.input;
    return el("select", { class: "source", "aria-label": t("input") },
      inputs.map((name) => el("option", { value: name, selected: name === current }, inputLabel(name))));
  }

  // A projector (PJLink) has no absolute volume: power, mute and input only, its inputs named by PJLink.
  function displayControls(device, projector) {
    const id = device.id;
    const dev = { device: id };
    const source = inputSelect(device, projector);
    const level = numberInput("level", 0, 100, 30);
    return el("div", { class: "controls" },
      el("div", { class: "row" },
        button("power_on", t("power_on"), "panel.power", { ...dev, on: true }),
        button("power_off", t("power_off"), "panel.power", { ...dev, on: false }),
        button("mute_on", t("mute_on"), "panel.mute", { ...dev, on: true }),
        button("mute_off", t("mute_off"), "panel.mute", { ...dev, on: false })),
      el("div", { class: "row" }, source,
        button("input", t("input"), "panel.input", () => ({ ...dev, source: source.value }))),
      projector ? null : el("div", { class: "row" }, level,
        button("volume", t("set_volume"), "panel.volume", () => ({ ...dev, level: Number(level.value) }))));
  }

  // An onvif camera's still: camera.snapshot answers with a small JPEG (base64), shown as a blob: URL.
  function snapshotRow(id) {
    const picture = el("img", { class: "snapshot", "data-snapshot": id, alt: t("snapshot_of", { device: id }), hidden: true });
    const node = el("button", { type: "button", "data-action": "snapshot" }, t("snapshot"));
    node.addEventListener("click", async () => {
      const result = await send("camera.snapshot", { device: id }, node);
      if (!result || typeof result.jpeg !== "string") return;
      const bytes = Uint8Array.from(atob(result.jpeg), (c) => c.charCodeAt(0));
      if (picture.src) URL.revokeObjectURL(picture.src);
      picture.src = URL.createObjectURL(new Blob([bytes], { type: "image/jpeg" }));
      picture.dataset.width = result.width;
      picture.dataset.height = result.height;
      picture.hidden = false;
    });
    return el("div", { class: "row" }, node, picture);
  }

  function cameraControls(id, profile) {
    const dev = { device: id };
    const preset = numberInput("preset", 0, 255, 1);
    const speed = numberInput("speed", 1, 24, 8);
    const stop = () => send("camera.stop", dev, null, true);
    const move = (direction) => holdButton("move_" + direction, t("move_" + direction),
      () => send("camera.move", { ...dev, direction, speed: Number(speed.value) }, null, true), stop);
    const zoom = (direction) => holdButton("zoom_" + direction, t("zoom_" + direction),
      () => send("camera.zoom", { ...dev, direction }, null, true),
      () => send("camera.zoom", { ...dev, direction: "stop" }, null, true));
    return el("div", { class: "controls" },
      el("div", { class: "row" }, el("label", {}, t("preset") + " ", preset),
        button("preset_recall", t("preset_recall"), "camera.preset.recall", () => ({ ...dev, preset: Number(preset.value) })),
        button("preset_save", t("preset_save"), "camera.preset.save", () => ({ ...dev, preset: Number(preset.value) }))),
      el("div", { class: "row pad" }, move("up"), move("down"), move("left"), move("right"),
        button("move_stop", t("move_stop"), "camera.stop", dev),
        el("label", {}, t("speed") + " ", speed)),
      el("div", { class: "row" }, zoom("tele"), zoom("wide"),
        button("zoom_stop", t("zoom_stop"), "camera.zoom", { ...dev, direction: "stop" }),
        button("home", t("home"), "camera.home", dev)),
      profile === "onvif" ? snapshotRow(id) : null);
  }

  function card(device) {
    let controls = null;
    if (BOOT.can_command && device.kind === "display") controls = displayControls(device, false);
    if (BOOT.can_command && device.kind === "projector") controls = displayControls(device, true);
    if (BOOT.can_command && device.kind === "camera") controls = cameraControls(device.id, device.profile);
    const sub = (device.name ? tr("kind_", device.kind) + " · " + device.id + " · " : "") + device.profile;
    return el("section", { class: "card", "data-device": device.id, "data-kind": device.kind },
      el("h3", {}, deviceTitle(device), " ", el("span", { class: "sub" }, sub)),
      el("p", { class: "device-state" }),
      el("div", { class: "device-detail" }),
      el("p", { class: "sub device-ts" }),
      controls);
  }

  // An offline room's cards are greyed and say "最后已知" with when the room was last heard.
  function renderDevices(list, agent) {
    const layout = JSON.stringify(list.map((d) => [d.id, d.kind, d.profile, d.name, d.inputs]));
    if (layout !== deviceLayout) {
      // Controls are built once per device list, so typing in them survives live updates.
      devices.replaceChildren(...list.map(card));
      deviceLayout = layout;
    }
    const stale = isStale(agent);
    devices.classList.toggle("stale", stale);
    staleNote.hidden = !stale;
    for (const device of list) {
      const node = [...devices.children].find((c) => c.dataset.device === device.id);
      const state = node.querySelector(".device-state");
      state.textContent = deviceWords(device);
      state.className = "device-state" + (device.online === false && !stale ? " device-offline" : "");
      node.querySelector(".device-detail").replaceChildren((device.online === false && detailToggle(device.error)) || "");
      node.querySelector(".device-ts").replaceChildren(stale ? staleMark(agent.last_seen) : when(device.ts));
    }
  }

  // Messages from this room that broke the contract: how many and when; the last reason for the technician.
  function dropped(agent) {
    const count = agent.dropped || 0;
    const last = count ? [" · ", when(agent.dropped_ts), detailToggle(agent.dropped_reason)] : [];
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
        item("open_alarms", el("span", { id: "alarm-counts", "data-open": agent.open_alarms,
          "data-unacked": agent.unacked_alarms || 0 }, t("alarms_open", { n: agent.open_alarms }) + " · " +
          t("alarms_unacked", { n: agent.unacked_alarms || 0 }))),
        dropped(agent),
        item("nics", (agent.nics || []).map((n) => n.mac + (n.address ? "（" + n.address + "）" : "")).join("，") || "—"),
        item("next_wake", when((agent.wake || []).find((ts) => new Date(ts) > Date.now())))));
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
      if (!reply.ok) node.replaceWith(reply.status === 403 ? t("error_forbidden") : t("code_failed"));
      else refresh();
    });
    return node;
  }

  // A watch's SDP and session token are for the browser, not for people reading the log.
  function brief(fields) {
    if (!fields || typeof fields !== "object") return fields;
    return Object.fromEntries(Object.entries(fields).filter(([key]) => !["offer", "answer", "session"].includes(key)));
  }

  // An alarm in the viewer's language from its type and params; the agent's own text behind 技术信息.
  function alarmText(a) {
    return [el("span", { "data-alarm-text": a.type }, alarmWords(a)), detailToggle(a.message)];
  }

  function bracketed(words) {
    return words ? "（" + words + "）" : "";
  }

  // What was done and how it ended, in words; arguments, result and error as they were, behind 技术信息.
  function commandOutcome(c) {
    const said = outcomeParts(c.name, { ...c, result: brief(c.result) });
    const raw = JSON.stringify({ args: brief(c.args), result: brief(c.result), error: c.error || undefined,
      code: c.code || undefined, params: c.code ? c.params : undefined }, null, 1);
    return [el("span", { class: "status-" + (c.status === "succeeded" ? "ok" : c.status === "sent" ? "wait" : "bad"),
      "data-status": c.status }, said.words), detailToggle(raw)];
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
      (p) => [[el("span", { "data-peer": p.name }, roomName(p.name)), el("div", { class: "sub" }, p.name)],
        [el("span", { class: p.state === "connected" ? "status-ok" : "status-bad", "data-peer-state": p.state },
          tr("peer_state_", p.state)), detailToggle(p.reason)],
        when(p.since), num(p.rtt_ms, 0, " ms"), num(typeof p.loss === "number" ? p.loss * 100 : null, 1, " %"),
        num(p.bitrate_in_kbps, 0, "") + " / " + num(p.bitrate_out_kbps, 0, " kbps"),
        (p.frames_sent ?? "—") + " / " + (p.frames_received ?? "—")]);
    section.querySelector("h2").after(el("p", { class: "sub", id: "lesson-head" },
      t("live_lesson_head", { mode: tr("lesson_mode_", lesson.mode), role: tr("lesson_role_", lesson.role),
        since: fmtTime(lesson.since) }), " · ", when(latest.ts)));
    return section;
  }

  // Where finished recordings go besides the centre ([[upload.targets]]: FTP drops, HTTP PUT), per target,
  // as the agent's newest telemetry reports it.  Hidden when the room has no such target.
  function deliveries(latest) {
    const targets = Object.entries(((latest || {}).upload || {}).targets || {}).map(([name, d]) => ({ name, ...d }));
    if (!targets.length) return el("section", { id: "deliveries", hidden: true });
    const sending = (d) => d.current + (d.size ? " " + Math.floor((100 * d.bytes_sent) / d.size) + " %" : "");
    return table("deliveries", t("deliveries"),
      ["delivery_target", "state", "delivery_pending", "delivery_done", "delivery_current", "delivery_error"], targets,
      (d) => {
        const state = d.failures ? "failing" : d.current ? "sending" : d.pending ? "waiting" : "ok";
        return [d.name + "（" + (d.kind || "?") + "）",
          el("span", { class: state === "failing" ? "status-bad" : "status-ok", "data-delivery": state },
            t("delivery_" + state)),
          String(d.pending ?? "—"),
          String(d.delivered ?? "—") + (d.given_up ? " · " + t("delivery_given_up", { n: d.given_up }) : ""),
          d.current ? sending(d) : "—", detailToggle(d.last_error) || "—"]; // the target's own words: 技术信息
      });
  }

  function size(bytes) {
    return bytes >= 1e9 ? (bytes / 1e9).toFixed(2) + " GB" : (bytes / 1e6).toFixed(1) + " MB";
  }

  function render(data) {
    current = data;
    learnNames(data.agent, data.rooms);
    renderHeader(data.agent);
    renderDevices(data.agent.devices || [], data.agent);
    watch.sources(data);
    tables.replaceChildren(
      onAir((data.telemetry || [])[0]),
      liveLesson((data.telemetry || [])[0]),
      table("recordings", t("recordings"), ["lesson", "time", "size", "play"], data.recordings || [],
        (r) => [r.lesson || r.recording_id, when(r.started || r.received), size(r.size), playCell(r)]),
      deliveries((data.telemetry || [])[0]),
      table("alarms", t("alarms"), ["time", "severity", "type", "device", "message", "state", "ack"], data.alarms,
        (a) => [when(a.raised_ts), tr("severity_", a.severity), alarmTitle(a.type), alarmSubject(a), alarmText(a),
          a.cleared_ts ? t("cleared") : t("open"), ackCell(a)], moreButton("alarms", data)),
      table("commands", t("commands"), ["time", "command", "by", "result"], data.commands,
        (c) => [when(c.sent_ts), commandName(c.name) + bracketed(argsWords(brief(c.args))), c.by, commandOutcome(c)],
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
    top.push(el("div", { class: "row" }, button("ping", t("agent_ping"), "agent.ping", {})), powerControls());
  } else {
    top.push(el("p", { class: "note" }, t("viewer_note")));
  }
  main.replaceChildren(...top, outcomes, el("h2", {}, t("devices")), staleNote, devices, watch.section, player, tables);
  render(BOOT.data);
  listen("?agent=" + encodeURIComponent(agentId), refresh, refresh);
  setInterval(() => render(current), 30000); // keeps "… ago" true
})();
