// The classroom page: big buttons, lights, camera and panel control. Renders from JSON with text
// nodes only (never innerHTML) and stays live through Server-Sent Events (/page/events).
"use strict";

const BOOT = JSON.parse(document.getElementById("boot").textContent);
const T = BOOT.t;
const LAYOUT = BOOT.layout;
// Hooks for lesson.js: called with every new view.
const VIEW_HOOKS = [];

function t(key, vars) {
  let text = key in T ? T[key] : key;
  for (const [name, value] of Object.entries(vars || {})) text = text.split("{" + name + "}").join(String(value));
  return text;
}

// el("button", {class: "x", onclick: fn, "data-a": 1}, "text", child, [more]): children are text or nodes.
function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "class") node.className = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// A button's face: its label and, when it cannot be used now, why (said on the button itself:
// a touch panel has no hover to show a tooltip).
function face(node, label, why) {
  node.replaceChildren(el("span", { class: "face" }, label));
  if (why) node.append(el("small", { class: "why-not" }, why));
  node.disabled = Boolean(why);
}

// A light's reason in words: an offline device's names the cable to check (serial line or network).
function whyWords(light) {
  return t("why_" + light.why + (light.link ? "_" + light.link : ""));
}

// A panel input's name as people say it: hdmi2 -> HDMI 2, ops1 -> 电脑(OPS) 1, dvi_video -> DVI (视频).
function inputLabel(name) {
  if ("input_" + name in T) return T["input_" + name];
  const parts = name.split("_").map((part) => {
    const found = /^([a-z]+?)(\d*)$/.exec(part);
    if (!found) return part;
    const word = "input_" + found[1] in T ? T["input_" + found[1]] : found[1].toUpperCase();
    return word + (found[2] ? " " + found[2] : "");
  });
  return parts[0] + (parts.length > 1 ? " (" + parts.slice(1).join(" ") + ")" : "");
}

function hms(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const pad = (n) => String(n).padStart(2, "0");
  return pad(Math.floor(s / 3600)) + ":" + pad(Math.floor((s % 3600) / 60)) + ":" + pad(s % 60);
}

const outcomes = el("ul", { id: "outcomes", class: "outcomes", "aria-live": "polite" });

// Run one command through the agent's command table; the outcome line says what happened.
async function send(name, args, opts) {
  const quiet = opts && opts.quiet;
  const label = t("cmd_" + name);
  const line = el("li", { class: "outcome pending", "data-command": name }, t("sending", { name: label }));
  if (!quiet) {
    outcomes.prepend(line);
    while (outcomes.children.length > 4) outcomes.lastChild.remove();
  }
  let reply;
  try {
    const response = await fetch("/page/command", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      credentials: "same-origin",
      body: JSON.stringify({ name, args }),
    });
    if (response.status === 401) window.location.assign("/page/login?next=%2F");
    reply = await response.json();
  } catch (err) {
    reply = { status: "failed", words: t("error_network"), error: String(err) };
  }
  if (!reply || typeof reply !== "object") reply = { status: "failed", error: String(reply) };
  const ok = reply.status === "succeeded";
  if (!ok && quiet) {
    outcomes.prepend(line);
    while (outcomes.children.length > 4) outcomes.lastChild.remove();
  }
  line.className = "outcome " + (ok ? "status-ok" : "status-bad");
  line.dataset.status = reply.status;
  line.replaceChildren(ok ? t("done", { name: label }) : t("failed", { name: label, words: reply.words || t("error_other") }));
  if (!ok && reply.error) line.append(el("details", { class: "detail" }, el("summary", {}, t("detail")), reply.error));
  return reply;
}

// A button that acts while pressed (camera move, zoom): press starts, release stops. The stop
// goes only after the start has been answered: two requests may overtake each other, and a
// stop that arrives first would leave the camera turning.
function holdButton(cls, label, press, release) {
  let held = false;
  let pressing = Promise.resolve();
  const node = el("button", { type: "button", class: "hold " + cls }, label);
  const down = (event) => {
    event.preventDefault();
    if (held) return;
    held = true;
    node.classList.add("pressed");
    pressing = press();
  };
  const up = () => {
    if (!held) return;
    held = false;
    node.classList.remove("pressed");
    pressing.finally(release);
  };
  node.addEventListener("pointerdown", down);
  for (const name of ["pointerup", "pointerleave", "pointercancel"]) node.addEventListener(name, up);
  node.addEventListener("contextmenu", (event) => event.preventDefault());
  return node;
}

function cameraCard(camera) {
  const dev = { device: camera.id };
  let saving = false;
  const hint = el("p", { class: "hint", hidden: true }, t("save_hint"));
  const save = el("button", { type: "button", class: "save", "data-action": "save" }, t("save_preset"));
  save.addEventListener("click", () => {
    saving = !saving;
    save.classList.toggle("pressed", saving);
    hint.hidden = !saving;
  });
  const presets = Object.entries(camera.presets).map(([n, name]) => {
    const node = el("button", { type: "button", class: "preset", "data-preset": n }, name);
    node.addEventListener("click", () => {
      const command = saving ? "camera.preset.save" : "camera.preset.recall";
      if (saving) save.click();
      send(command, { ...dev, preset: Number(n) });
    });
    return node;
  });
  const move = (direction, label) =>
    holdButton("pad-" + direction, label,
      () => send("camera.move", { ...dev, direction }, { quiet: true }),
      () => send("camera.stop", dev, { quiet: true }));
  const zoom = (direction, label) =>
    holdButton("zoom-" + direction, label,
      () => send("camera.zoom", { ...dev, direction }, { quiet: true }),
      () => send("camera.zoom", { ...dev, direction: "stop" }, { quiet: true }));
  const home = el("button", { type: "button", class: "home", "data-action": "home", title: t("home") }, "⌂");
  home.addEventListener("click", () => send("camera.home", dev));
  return el("section", { class: "card camera", "data-device": camera.id },
    el("h2", {}, t("camera"), " ", el("span", { class: "sub" }, camera.id)),
    el("p", { class: "position" }),
    el("div", { class: "presets" }, presets, save), hint,
    el("div", { class: "ptz" },
      el("div", { class: "pad" }, el("span"), move("up", "▲"), el("span"), move("left", "◀"), home,
        move("right", "▶"), el("span"), move("down", "▼"), el("span")),
      el("div", { class: "zoom" }, zoom("tele", t("zoom_in")), zoom("wide", t("zoom_out")))));
}

function panelCard(panel) {
  const dev = { device: panel.id };
  const volume = el("input", { type: "range", min: 0, max: 100, step: 1, class: "volume", "aria-label": t("volume") });
  volume.addEventListener("change", () => send("panel.volume", { ...dev, level: Number(volume.value) }));
  const step = (delta) => () => {
    volume.value = String(Math.min(100, Math.max(0, Number(volume.value) + delta)));
    send("panel.volume", { ...dev, level: Number(volume.value) });
  };
  // A list rather than a button per input: profiles name up to a dozen, most of them unused.
  const inputs = el("select", { class: "input", "aria-label": t("input") },
    el("option", { value: "", disabled: true, selected: true }, "—"),
    panel.inputs.map((name) => el("option", { value: name }, inputLabel(name))));
  inputs.addEventListener("change", () => { if (inputs.value) send("panel.input", { ...dev, source: inputs.value }); });
  return el("section", { class: "card panel", "data-device": panel.id },
    el("h2", {}, t(panel.kind === "projector" ? "kind_projector" : "panel"), " ", el("span", { class: "sub" }, panel.id)),
    el("p", { class: "panel-state" }),
    el("div", { class: "row" },
      el("button", { type: "button", class: "power-on", onclick: () => send("panel.power", { ...dev, on: true }) }, t("power_on")),
      el("button", { type: "button", class: "power-off", onclick: () => send("panel.power", { ...dev, on: false }) }, t("power_off"))),
    panel.inputs.length || panel.reports_inputs
      ? el("div", { class: "row inputs", hidden: !panel.inputs.length }, el("label", { class: "label" }, t("input"), " ", inputs))
      : null,
    panel.volume === false ? null : el("div", { class: "row" },  // a PJLink projector has no volume to set
      el("button", { type: "button", class: "vol-down", onclick: step(-5) }, t("volume_down")), volume,
      el("button", { type: "button", class: "vol-up", onclick: step(5) }, t("volume_up"))));
}

// --- the big buttons and the remote-classroom picker -------------------------------------

const picker = el("dialog", { id: "picker" });
let view = BOOT.view;

const PRESENCE_EVERY_MS = 5000; // as long as lesson.peers keeps an answer: each poll asks the broker at most once

// The picker's default: the timetable's live lesson led here now, else the config's lesson.remotes.
function defaultRemotes() {
  const lead = view.lead;
  if (lead && lead.remotes && lead.remotes.length) return lead.remotes;
  const current = (view.timetable && view.timetable.current) || {};
  return current.remotes && current.remotes.length ? current.remotes : LAYOUT.default_remotes;
}

// One candidate's presence, from lesson.peers: 在线 / 离线 / 上课中 (and whose lesson).
function presenceWords(peer) {
  if (!peer) return t("presence_checking");
  if (!peer.online) return t("presence_offline");
  if (!peer.busy) return t("presence_online");
  const whose = peer.state === "leading" ? t("presence_leading") : t("presence_with", { main: peer.main });
  return t("presence_busy") + " · " + whose;
}

function showPresence(rows, peers, single) {
  for (const row of rows) {
    const peer = peers[row.id];
    if (!peer) continue;
    const state = !peer.online ? "offline" : peer.busy ? "busy" : "online";
    row.label.dataset.presence = state;
    row.name.textContent = peer.room ? peer.room + " (" + row.id + ")" : row.id;
    row.state.textContent = presenceWords(peer);
    // Offline classrooms start unchecked; a box the teacher touched stays as the teacher left it.
    if (state === "offline" && !row.touched) row.box.checked = false;
  }
  // 双师 links one classroom: when the default one is offline, the first one online instead.
  if (single && !rows.some((r) => r.box.checked || r.touched)) {
    const online = rows.find((r) => r.label.dataset.presence === "online");
    if (online) online.box.checked = true;
  }
}

function openPicker(mode) {
  const chosen = new Set(defaultRemotes());
  const candidates = [...new Set([...LAYOUT.candidates, ...chosen])];
  if (!chosen.size && candidates.length === 1) chosen.add(candidates[0]); // the only classroom there is
  const single = mode === "dual_teacher";
  const first = candidates.find((id) => chosen.has(id)) || candidates[0];
  const rows = candidates.map((id) => {
    const box = el("input", { type: single ? "radio" : "checkbox", name: "remote", value: id,
      checked: single ? id === first : chosen.has(id) });
    const row = { id, box, touched: false, name: el("span", { class: "who" }, id),
      state: el("span", { class: "presence" }, t("presence_checking")) };
    box.addEventListener("change", () => { for (const r of rows) r.touched = true; ready(); });
    row.label = el("label", { class: "remote", "data-agent": id, "data-presence": "checking" },
      box, " ", row.name, " ", row.state);
    return row;
  });
  const go = el("button", { type: "button", class: "big go", "data-action": "go" });
  // 开始 says why it cannot start yet instead of sending a lesson with no classroom in it.
  const ready = () => face(go, t("start"), rows.some((r) => r.box.checked) ? "" : t("why_pick_first"));
  ready();
  let polling = true;
  const poll = async () => {
    while (polling && picker.open) {
      const reply = await send("lesson.peers", {}, { quiet: true });
      if (reply.status === "succeeded" && polling) {
        showPresence(rows, reply.result.peers || {}, single);
        ready();
      }
      await new Promise((resolve) => setTimeout(resolve, PRESENCE_EVERY_MS));
    }
  };
  picker.addEventListener("close", () => { polling = false; }, { once: true });
  go.addEventListener("click", () => {
    const remotes = [...picker.querySelectorAll("input:checked")].map((b) => b.value);
    if (!remotes.length) return;
    picker.close();
    send("lesson.start", { mode, remotes });
  });
  picker.replaceChildren(
    el("h2", {}, t(mode === "zhuandi" ? "start_zhuandi" : "start_dual")),
    el("p", {}, candidates.length ? t("pick_remotes") : t("no_remotes"),
      candidates.length ? null : el("details", { class: "detail" }, el("summary", {}, t("detail")), t("no_remotes_detail"))),
    el("div", { class: "remotes" }, rows.map((r) => r.label)),
    el("div", { class: "row" }, candidates.length ? go : null,
      el("button", { type: "button", class: "big", onclick: () => picker.close() }, t("cancel"))));
  picker.showModal();
  if (candidates.length && LAYOUT.can_lesson) poll();
}

// The big buttons: start a lesson (or, during one, the one way to end it), and recording.
// lesson.js puts the lesson's mute button between them.
const bigButtons = {
  zhuandi: el("button", { type: "button", class: "big action", "data-action": "zhuandi", onclick: () => openPicker("zhuandi") }),
  dual: el("button", { type: "button", class: "big action", "data-action": "dual", onclick: () => openPicker("dual_teacher") }),
  stopLesson: el("button", { type: "button", class: "big action end", "data-action": "stop-lesson", hidden: true }),
  record: el("button", { type: "button", class: "big action", "data-action": "record" }),
};
bigButtons.record.addEventListener("click", () => {
  if (view.recording.active) return send("record.stop", {});
  const lesson = view.timetable && view.timetable.current;
  const args = {};
  if (lesson && lesson.name) args.lesson = lesson.name;
  if (lesson && lesson.teacher) args.teacher = lesson.teacher;
  return send("record.start", args);
});
bigButtons.stopLesson.addEventListener("click", () => send("lesson.stop", {}));

// --- rendering the live view -------------------------------------------------------------

const nowBox = el("section", { id: "now", class: "now" });
const lights = el("ul", { id: "lights", class: "lights" });
const banner = el("p", { id: "recording", class: "recording", hidden: true });
const onAir = el("p", { id: "broadcast", class: "broadcast", hidden: true });
const cards = el("div", { id: "controls", class: "cards" },
  LAYOUT.panels.map(panelCard), LAYOUT.cameras.map(cameraCard));
let recordingAt = null; // [seconds, when received]

function lessonLine(key, lesson, none) {
  if (!lesson) return el("p", { class: "slot slot-" + key }, el("b", {}, t(key)), " ", none);
  const day = !lesson.in_days ? "" : lesson.in_days === 1 ? t("tomorrow") : t("weekday_" + lesson.weekday);
  const when = (day ? day + " " : "") + lesson.start + "–" + lesson.end;
  return el("p", { class: "slot slot-" + key }, el("b", {}, t(key)), " ", el("span", { class: "name" }, lesson.name),
    lesson.teacher ? " · " + lesson.teacher : "", " · ", when);
}

function light(kind, id, l) {
  return el("li", { class: "light light-" + l.level, "data-id": id, "data-level": l.level, title: l.detail || "" },
    el("span", { class: "dot", "aria-hidden": "true" }),
    el("span", { class: "what" }, t("kind_" + kind) + " " + id), "：",
    el("span", { class: "why" }, whyWords(l)));
}

function renderDevice(device) {
  const card = cards.querySelector('[data-device="' + CSS.escape(device.id) + '"]');
  if (!card) return;
  const s = device.state;
  if (device.kind === "camera") {
    const pos = card.querySelector(".position");
    pos.textContent = "pan" in s ? t("position", { pan: s.pan, tilt: s.tilt, zoom: s.zoom ?? "—" }) : whyWords(device.light);
    pos.dataset.pan = s.pan ?? "";
    pos.dataset.tilt = s.tilt ?? "";
  } else {
    const words = [];
    if (s.power) words.push(t("power") + " " + ("val_" + s.power in T ? T["val_" + s.power] : s.power));
    if (s.volume !== undefined) words.push(t("volume") + " " + s.volume);
    if (s.source) words.push(t("input") + " " + inputLabel(String(s.source)));
    card.querySelector(".panel-state").textContent = words.join(" · ") || whyWords(device.light);
    const volume = card.querySelector("input.volume");
    if (volume && s.volume !== undefined && document.activeElement !== volume) volume.value = s.volume;
    const select = card.querySelector("select.input");
    if (select && Array.isArray(device.inputs)) showInputs(card, select, device.inputs);
    if (select && s.source && document.activeElement !== select) select.value = s.source;
  }
  card.dataset.level = device.light.level;
}

// A projector's own inputs (PJLink INST), as it reports them: the list holds only those.
function showInputs(card, select, names) {
  const now = [...select.options].slice(1).map((o) => o.value);
  if (now.join(" ") !== names.join(" ") && document.activeElement !== select) {
    select.replaceChildren(el("option", { value: "", disabled: true, selected: true }, "—"),
      ...names.map((name) => el("option", { value: name }, inputLabel(name))));
  }
  card.querySelector(".row.inputs").hidden = names.length === 0;
}

function render(next) {
  view = next;
  document.getElementById("room").textContent = view.room;
  document.title = view.room + " · " + t("title");
  const tt = view.timetable || {};
  nowBox.replaceChildren(lessonLine("now", tt.current, t("no_lesson")), lessonLine("next", tt.next, t("no_next")));
  lights.replaceChildren(
    ...view.devices.map((d) => light(d.kind, d.id, d.light)),
    ...view.sources.map((s) => light("source", s.id, s.light)));
  for (const device of view.devices) renderDevice(device);
  const rec = view.recording;
  face(bigButtons.record, rec.active ? t("stop_record") : t("start_record"), LAYOUT.can_record ? "" : t("why_no_recording"));
  bigButtons.record.classList.toggle("on", rec.active);
  const lessonOn = Boolean(view.lesson && view.lesson.active);
  // During a lesson the start buttons give way to the one button that ends it.
  face(bigButtons.zhuandi, t("start_zhuandi"), LAYOUT.can_lesson ? "" : t("lesson_not_configured"));
  face(bigButtons.dual, t("start_dual"), LAYOUT.can_lesson ? "" : t("lesson_not_configured"));
  bigButtons.zhuandi.hidden = bigButtons.dual.hidden = lessonOn;
  face(bigButtons.stopLesson, t(lessonOn && view.lesson.role === "remote" ? "leave_lesson" : "stop_lesson"));
  bigButtons.stopLesson.hidden = !lessonOn;
  recordingAt = rec.active ? [rec.seconds, Date.now()] : null;
  banner.hidden = !rec.active;
  const air = view.broadcast || {};
  onAir.hidden = !air.active;
  onAir.dataset.health = air.health || "";
  if (air.active) {
    onAir.replaceChildren(el("span", { class: "air-dot", "aria-hidden": "true" }),
      t("broadcast_now", { target: air.target }), " · ", t("broadcast_" + air.health));
  }
  tick();
  for (const hook of VIEW_HOOKS) hook(view);
}

function tick() {
  const clock = document.getElementById("clock");
  clock.textContent = new Date().toLocaleTimeString(T.html_lang, { hour12: false, hour: "2-digit", minute: "2-digit" });
  if (!recordingAt) return;
  const seconds = recordingAt[0] + (Date.now() - recordingAt[1]) / 1000;
  const lesson = view.recording.lesson;
  banner.replaceChildren(el("span", { class: "rec-dot", "aria-hidden": "true" }),
    lesson ? t("recording_now", { lesson }) : t("recording_plain"), " · ", t("recording_time", { time: hms(seconds) }));
}

function listen() {
  const badge = document.getElementById("live");
  const source = new EventSource("/page/events");
  source.onopen = () => { badge.textContent = t("live_on"); badge.className = "live on"; };
  source.onerror = () => { badge.textContent = t("live_off"); badge.className = "live off"; };
  source.onmessage = (message) => render(JSON.parse(message.data));
}

document.getElementById("main").replaceChildren(
  nowBox,
  el("section", { id: "actions", class: "actions" }, Object.values(bigButtons)),
  banner, onAir, outcomes,
  el("section", { id: "lesson", class: "lesson-view", hidden: true }),
  el("h2", { class: "section" }, t("lights")), lights,
  cards, picker);
render(BOOT.view);
listen();
setInterval(tick, 1000);
