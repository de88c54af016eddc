// Words for what the fleet reports, in the viewer's language: alarms, refusals and failures from
// their code and params, commands and their results, device states, inputs, the names people use.
// The technical text (the agent's English, raw JSON) is kept behind a 技术信息 toggle.
"use strict";

// What people call things: devices and sources by their configured name, classrooms by room name.
const NAMES = { devices: {}, sources: {}, rooms: {} };

function learnNames(agent, rooms) {
  for (const d of agent.devices || []) if (d.name) NAMES.devices[d.id] = d.name;
  for (const s of agent.sources || []) if (s.name) NAMES.sources[s.id] = s.name;
  Object.assign(NAMES.rooms, rooms || {});
}

const deviceName = (id) => NAMES.devices[id] || String(id);
const sourceName = (id) => NAMES.sources[id] || String(id);
const roomName = (id) => NAMES.rooms[id] || String(id);

// A device's title: its name, else its kind and id ("显示屏 panel").
function deviceTitle(device) {
  return device.name || tr("kind_", device.kind) + " " + device.id;
}

// "hdmi1" -> "HDMI 1", "ops" -> "电脑(OPS)", PJLink's "digital2" -> "数字 2(HDMI)".
function inputLabel(value) {
  const key = "input_" + value;
  if (key in T) return T[key];
  const numbered = /^([a-z]+?)(\d+)$/.exec(String(value));
  if (numbered && "input_n_" + numbered[1] in T) return t("input_n_" + numbered[1], { n: numbered[2] });
  return String(value);
}

// Values by what they are; null when there are no words for it (an object: for the technician).
function valueWords(value, key) {
  if (typeof value === "boolean" && SWITCHES.has(key)) return T[value ? "val_on" : "val_off"];
  if (typeof value === "boolean") return T[value ? "val_true" : "val_false"];
  if (value === null || value === undefined) return "—";
  if (key === "source" || key === "input") return inputLabel(value);
  if (key === "device") return deviceName(value);
  if (key === "target" || key === "main") return roomName(value);
  if (Array.isArray(value)) {
    if (!value.every((v) => typeof v !== "object")) return null;
    const name = key === "remotes" ? roomName : key === "sources" ? sourceName : key === "inputs" ? inputLabel
      : (v) => tr("val_", v);
    return value.map(name).join("、");
  }
  if (typeof value === "object") return null;
  return typeof value === "number" ? String(value) : tr("val_", value);
}

// {"power": "on", "volume": 30} -> "电源 开 · 音量 30": only what has words; the rest is technical.
function fieldsWords(fields) {
  if (fields === null || fields === undefined || typeof fields !== "object") return "";
  return Object.entries(fields)
    .filter(([key, value]) => !HIDDEN_KEYS.has(key) && value !== "" && "key_" + key in T)
    .map(([key, value]) => [T["key_" + key], valueWords(value, key)])
    .filter(([, words]) => words !== null)
    .map(([label, words]) => label + " " + words)
    .join(" · ");
}

// A template filled from params; "" when a param it needs is missing.
function filled(key, params) {
  const text = t(key, params);
  return /\{[a-z_]+\}/.test(text) ? "" : text;
}

// Why a command was refused or failed, or why a device is offline, from its code; "" if unknown.
function codeWords(code, params) {
  if (!code) return "";
  const raw = params || {};
  const p = Object.assign({}, raw);
  if (raw.device !== undefined) p.device = deviceName(raw.device);
  if (raw.arg !== undefined) p.arg = tr("key_", raw.arg);
  const label = raw.arg === "source" ? inputLabel : (v) => tr("val_", v);
  if (raw.value !== undefined) p.value = label(raw.value);
  if (Array.isArray(raw.choices)) p.choices = raw.choices.map(label).join("、");
  if (code === "busy") return t(raw.recording ? "code_busy_recording" : "code_busy_lesson");
  if ("why_" + code in T) {
    const reason = code === "device_refused" && "reason_" + raw.reason in T ? T["reason_" + raw.reason] : "";
    return filled("why_" + code, p) + reason;
  }
  return "code_" + code in T ? filled("code_" + code, p) : "";
}

const SUMMARIES = {
  "lesson.status": (r) => {
    if (!r || !r.active) return t("sum_lesson_none");
    const peers = Object.values(r.peers || {});
    return t("sum_lesson", { mode: tr("lesson_mode_", r.mode), role: tr("lesson_role_", r.role),
      connected: peers.filter((p) => p && p.state === "connected").length, total: peers.length });
  },
  "agent.ping": () => t("sum_pong"),
  "media.viewers": (r) => t("sum_viewers", { viewers: Number((r || {}).viewers) || 0 }),
  "lesson.peers": (r) => t("sum_peers", { n: Object.keys((r && r.peers) || r || {}).length }),
  "schedule.get": (r) => t("sum_schedule", { n: (((r || {}).timetable || r || {}).lessons || []).length }),
  "media.watch": () => "",
  "media.unwatch": () => "",
  "camera.snapshot": (r) => (r && r.width ? r.width + "×" + r.height : ""),
};

function resultWords(name, result) {
  if (name in SUMMARIES) return SUMMARIES[name](result);
  return fieldsWords(result);
}

// {words, detail}: what happened in words, and the technical text (the agent's English) for the toggle.
function outcomeParts(name, o) {
  const status = o.status;
  let summary = "";
  if (status === "succeeded") summary = resultWords(name, o.result);
  else if (status !== "timeout" && status !== "sent") {
    const plain = status === "rejected" ? "code_rejected" : status === "expired" ? "code_expired" : "code_failed";
    summary = codeWords(o.code, o.params) || t(plain);
  }
  const words = tr("status_", status);
  return { words: summary ? words + " — " + summary : words, detail: o.error || "" };
}

// The 技术信息 toggle: closed, its text wraps instead of widening the page.
function detailToggle(text) {
  if (!text) return null;
  return el("details", { class: "detail" }, el("summary", {}, t("detail")), el("pre", {}, String(text).slice(0, 4000)));
}

// A command's arguments in words, the device first by its name: "讲台大屏 · 信号源 HDMI 1".
function argsWords(args) {
  if (!args || typeof args !== "object") return "";
  const rest = fieldsWords(args);
  const device = typeof args.device === "string" ? deviceName(args.device) : "";
  return [device, rest].filter(Boolean).join(" · ");
}

function commandName(name) {
  return "cmd_" + name in T ? T["cmd_" + name] : String(name);
}

// An alarm's device column: another classroom by its room name, a source or device by its name.
function alarmSubject(a) {
  if (!a.device) return "—";
  if (a.type === "lesson_peer_lost" || a.type === "link_degraded") return roomName(a.device);
  if (a.type === "source_offline" || a.type === "encoder_degraded") return sourceName(a.device);
  if (a.device === "recording") return tr("key_", "recording");
  if (a.type === "sfu_unreachable") return t("subject_sfu"); // its address is for the technician
  return deviceName(a.device);
}

function alarmTitle(type) {
  return "alarm_" + type in T ? T["alarm_" + type] : t("alarm_other");
}

// What an alarm says, from its type and params; its title when there are no words for the params.
function alarmWords(a) {
  const raw = a.params || {};
  const p = Object.assign({}, raw);
  const type = a.type;
  let key = "alarm_text_" + type;
  if (type.startsWith("fault_") && raw.part) {
    return t("alarm_text_fault", { part: tr("part_", raw.part), level: tr("level_", raw.level) });
  }
  if (type === "device_offline") {
    return codeWords(raw.code, { device: a.device }) || t(key, { device: deviceName(a.device) });
  }
  if (raw.peer !== undefined) p.peer = roomName(raw.peer);
  if (raw.source !== undefined) p.source = sourceName(raw.source);
  if (type === "disk_low" && raw.needed_gb !== undefined) key += "_recording";
  if (type === "lesson_peer_lost") key += raw.role === "main" ? "_main" : "_remote";
  if (type === "recording_failed" && !raw.lesson) key += "_unnamed";
  if (type === "upload_failed" && raw.retry === false) key += "_final";
  if (type === "sfu_unreachable" && raw.fallback === "p2p") key += "_p2p";
  if (type === "link_degraded") for (const k of ["loss_percent", "rtt_ms"]) if (p[k] === null) p[k] = "—";
  if (type === "offline_in_hours") Object.assign(p, { start: fmtClock(raw.start), end: fmtClock(raw.end),
    since: fmtTime(raw.since) });
  return (key in T && filled(key, p)) || alarmTitle(type);
}

// "08:00" in the viewer's zone.
function fmtClock(iso) {
  const moment = new Date(iso);
  return isNaN(moment) ? "—" : moment.toLocaleTimeString(T.html_lang, { hour: "2-digit", minute: "2-digit", hour12: false });
}
