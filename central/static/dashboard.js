// The dashboard's only script: renders the fleet page and the room page from JSON, with text
// nodes only (never innerHTML), and keeps them live through Server-Sent Events.
"use strict";

const BOOT = JSON.parse(document.getElementById("boot").textContent);
const T = BOOT.t;
const STATES = ["online", "offline", "lost", "silent"];
const HIDDEN_KEYS = new Set(["max_value", "address", "socket", "cmd", "detail", "device", "reply", "jpeg", "ts"]);

function t(key, vars) {
  let text = key in T ? T[key] : key;
  for (const [name, value] of Object.entries(vars || {})) text = text.split("{" + name + "}").join(String(value));
  return text;
}

// A translation when there is one, the value itself otherwise.
function tr(prefix, value) {
  const key = prefix + value;
  return key in T ? T[key] : String(value);
}

// el("a", {href: "/", class: "x", onclick: fn}, "text", child, [more]): children are text or nodes.
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

function fmtTime(iso) {
  if (!iso) return "—";
  const moment = new Date(iso);
  return isNaN(moment) ? String(iso) : moment.toLocaleString(T.html_lang, { hour12: false });
}

function fmtAgo(iso) {
  if (!iso) return "—";
  const seconds = (new Date(iso) - Date.now()) / 1000;
  if (isNaN(seconds)) return String(iso);
  const rtf = new Intl.RelativeTimeFormat(T.html_lang, { numeric: "auto" });
  const abs = Math.abs(seconds);
  if (abs < 60) return rtf.format(Math.round(seconds), "second");
  if (abs < 3600) return rtf.format(Math.round(seconds / 60), "minute");
  if (abs < 86400) return rtf.format(Math.round(seconds / 3600), "hour");
  return rtf.format(Math.round(seconds / 86400), "day");
}

function when(iso) {
  return el("time", { datetime: iso || "", title: fmtTime(iso) }, fmtAgo(iso));
}

function stateBadge(state) {
  const known = STATES.includes(state) ? state : "unknown";
  return el("span", { class: "badge state-" + known, "data-state": known }, tr("state_", state));
}

const SWITCHES = new Set(["on", "power", "mute"]);

function valueWords(value, key) {
  if (typeof value === "boolean" && SWITCHES.has(key)) return T[value ? "val_on" : "val_off"];
  if (typeof value === "boolean") return T[value ? "val_true" : "val_false"];
  if (value === null || value === undefined) return "—";
  if (typeof value === "object") return JSON.stringify(value);
  return tr("val_", value);
}

// {"power": "on", "volume": 30} -> "电源 开 · 音量 30"
function fieldsWords(fields) {
  if (fields === null || fields === undefined) return "";
  if (typeof fields !== "object") return valueWords(fields);
  return Object.entries(fields)
    .filter(([key, value]) => !HIDDEN_KEYS.has(key) && value !== "")
    .map(([key, value]) => tr("key_", key) + " " + valueWords(value, key))
    .join(" · ");
}

function deviceWords(device) {
  if (device.online === false) return t("device_offline") + (device.error ? "（" + device.error + "）" : "");
  const words = fieldsWords(device.state || {});
  if (words) return words;
  return device.online ? t("device_online") : t("device_unknown");
}

function commandName(name) {
  return tr("cmd_", name);
}

function outcomeWords(name, outcome) {
  let line = t("outcome", { name: commandName(name), status: tr("status_", outcome.status) });
  if (outcome.status === "succeeded" && outcome.result !== null && outcome.result !== undefined) {
    const words = fieldsWords(outcome.result);
    if (words) line += " — " + words;
  }
  if (outcome.error) line += " — " + outcome.error;
  return line;
}

async function getJSON(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
  if (response.status === 401) window.location.assign("/login?next=" + encodeURIComponent(location.pathname));
  if (!response.ok) throw new Error(response.status + " " + url);
  return response.json();
}

async function postJSON(url, body) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    credentials: "same-origin",
    body: JSON.stringify(body),
  });
  let data = {};
  try {
    data = await response.json();
  } catch (err) {
    data = { error: response.statusText };
  }
  if (response.status === 403) data = { status: "rejected", error: t("error_forbidden") };
  return { ok: response.ok, status: response.status, data };
}

// Calls onChange(agentIds) for coalesced changes; onResync() after a reconnection.
function listen(query, onChange, onResync) {
  const badge = document.getElementById("live");
  let pending = new Set();
  let timer = null;
  const source = new EventSource("/api/events" + query);
  // Every (re)connection starts with "ready": fetch afresh, since changes made while the stream
  // was not yet (or no longer) open were not heard.
  source.addEventListener("ready", () => {
    badge.textContent = t("live_on");
    badge.className = "live on";
    onResync();
  });
  source.onerror = () => {
    badge.textContent = t("live_off");
    badge.className = "live off";
  };
  source.onmessage = (message) => {
    const event = JSON.parse(message.data);
    if (!event.agent_id) return;
    pending.add(event.agent_id);
    if (timer) return;
    timer = setTimeout(() => {
      const ids = pending;
      pending = new Set();
      timer = null;
      onChange(ids);
    }, 150);
  };
}
