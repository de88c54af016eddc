// The dashboard's shared script: renders the fleet page and the room page from JSON, with text
// nodes only (never innerHTML), and keeps them live through Server-Sent Events.  The words for
// codes, commands and names are in words.js.
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

// "5秒前", "3分钟后": our own words (Intl's Chinese says 1秒钟前).
function fmtAgo(iso) {
  if (!iso) return "—";
  const seconds = (new Date(iso) - Date.now()) / 1000;
  if (isNaN(seconds)) return "—";
  const abs = Math.abs(seconds);
  if (abs < 1) return t("ago_now");
  const [n, unit] = abs < 60 ? [abs, "s"] : abs < 3600 ? [abs / 60, "m"] : abs < 86400 ? [abs / 3600, "h"] : [abs / 86400, "d"];
  return t((seconds < 0 ? "ago_" : "in_") + unit, { n: Math.round(n) });
}

function when(iso) {
  return el("time", { datetime: iso || "", title: fmtTime(iso) }, fmtAgo(iso));
}

function stateBadge(state) {
  const known = STATES.includes(state) ? state : "unknown";
  return el("span", { class: "badge state-" + known, "data-state": known }, tr("state_", state));
}

const SWITCHES = new Set(["on", "power", "mute"]);

// A device's state in words; offline, why (from its code), its technical error kept for the toggle.
function deviceWords(device) {
  if (device.online === false) return codeWords(device.code, { device: device.name || device.id }) || t("device_offline");
  const words = fieldsWords(device.state || {});
  if (words) return words;
  return device.online ? t("device_online") : t("device_unknown");
}

// A room whose agent is not online: what it last said of its devices is history, not news.
function isStale(agent) {
  return agent.state !== "online";
}

function staleMark(iso) {
  return el("span", { class: "stale-mark" }, t("last_known") + " · ", when(iso));
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
  if (response.status === 403) data = { status: "rejected", code: "forbidden", error: data.error };
  return { ok: response.ok, status: response.status, data };
}

// Calls onChange(agentIds) for coalesced changes; onResync() after a reconnection or a "refresh".
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
  // "refresh" names no agent (another process committed, unseen): fetch afresh, as after a reconnection.
  let everything = false;
  source.onmessage = (message) => {
    const event = JSON.parse(message.data);
    if (event.kind === "refresh") everything = true;
    else if (event.agent_id) pending.add(event.agent_id);
    else return;
    if (timer) return;
    timer = setTimeout(() => {
      const ids = pending;
      const all = everything;
      pending = new Set();
      everything = false;
      timer = null;
      if (all) onResync();
      else onChange(ids);
    }, 150);
  };
}

// A camera button moves while it is held and stops when let go (pointerup, leave, cancel, the
// page hidden), after at most HOLD_MAX_MS whatever happens; a click from the keyboard moves one
// step.  The stop is sent once the move has been answered: sent at once, it could overtake it.
const HOLD_MAX_MS = 8000;
const STEP_MS = 400;
function holdButton(action, label, start, stop) {
  const node = el("button", { type: "button", class: "hold", "data-action": action }, label);
  let pressing = null;
  let safety = null;
  const release = () => {
    if (!pressing) return;
    const started = pressing;
    pressing = null;
    clearTimeout(safety);
    node.classList.remove("pressed");
    started.finally(stop);
  };
  const press = () => {
    if (pressing) return;
    node.classList.add("pressed");
    pressing = start();
    safety = setTimeout(release, HOLD_MAX_MS);
  };
  node.addEventListener("pointerdown", (event) => {
    if (event.button !== 0) return;
    event.preventDefault();
    press();
  });
  for (const name of ["pointerup", "pointerleave", "pointercancel"]) node.addEventListener(name, release);
  node.addEventListener("click", (event) => {
    if (event.detail !== 0 || pressing) return; // a pointer's click: the press already moved it
    press();
    setTimeout(release, STEP_MS);
  });
  node.addEventListener("contextmenu", (event) => event.preventDefault());
  window.addEventListener("blur", release);
  document.addEventListener("visibilitychange", () => document.hidden && release());
  window.addEventListener("pagehide", release);
  return node;
}
