// The fleet at a glance: one row per classroom, rooms with problems first, filters, live updates.
"use strict";

(() => {
  const main = document.getElementById("main");
  const agents = new Map();
  let sites = [];
  const filters = Object.assign({}, BOOT.data.filters);

  function query() {
    const params = new URLSearchParams();
    if (filters.site) params.set("site", filters.site);
    if (filters.offline_only) params.set("offline", "1");
    if (filters.alarms_only) params.set("alarms", "1");
    const text = params.toString();
    return text ? "?" + text : "";
  }

  function load(data) {
    agents.clear();
    for (const agent of data.agents) agents.set(agent.agent_id, agent);
    sites = data.sites;
    render();
  }

  async function reloadAll() {
    load(await getJSON("/api/fleet" + query()));
  }

  async function refresh(ids) {
    // With a filter on, whether an agent still belongs on the page is the server's call.
    if (filters.site || filters.offline_only || filters.alarms_only || ids.size > 20) return reloadAll();
    for (const id of ids) {
      try {
        const data = await getJSON("/api/agents/" + encodeURIComponent(id) + "?brief=1");
        agents.set(id, data.agent);
      } catch (err) {
        agents.delete(id);
      }
    }
    render();
  }

  function applyFilters() {
    history.replaceState(null, "", "/" + query());
    reloadAll();
  }

  function filterBar() {
    const site = el(
      "select",
      { id: "filter-site", onchange: (e) => { filters.site = e.target.value || null; applyFilters(); } },
      el("option", { value: "" }, t("all_sites")),
      sites.map((name) => el("option", { value: name, selected: name === filters.site }, name)),
    );
    const box = (id, key, label) =>
      el("label", { class: "check" },
        el("input", { type: "checkbox", id, checked: filters[key],
          onchange: (e) => { filters[key] = e.target.checked; applyFilters(); } }),
        label);
    return el("div", { class: "filters" },
      el("label", {}, t("site") + " ", site),
      box("filter-offline", "offline_only", t("offline_only")),
      box("filter-alarms", "alarms_only", t("alarms_only")));
  }

  // An offline room's devices are shown greyed, as last known (when the room was last heard).
  function devicesCell(agent) {
    const devices = agent.devices || [];
    if (!devices.length) return "—";
    const stale = isStale(agent);
    const list = el("ul", { class: stale ? "devices stale" : "devices" }, devices.map((d) =>
      el("li", { class: d.online === false && !stale ? "device device-offline" : "device", "data-device": d.id },
        el("span", { class: "device-name" }, deviceTitle(d)),
        " ",
        el("span", { class: "device-state" }, deviceWords(d)))));
    return stale ? [staleMark(agent.last_seen), list] : list;
  }

  // The live lesson and the recording, as the room's latest telemetry says (nothing once it is offline).
  function activityCell(agent) {
    const latest = agent.telemetry || {};
    if (isStale(agent)) return "—";
    const words = [];
    const lesson = latest.lesson;
    if (lesson && lesson.active) {
      words.push(el("span", { class: "activity lesson", "data-activity": "lesson" },
        t("activity_lesson", { mode: tr("lesson_mode_", lesson.mode), role: tr("lesson_role_", lesson.role) })));
    }
    if (latest.recording && latest.recording.active) {
      words.push(el("span", { class: "activity recording", "data-activity": "recording" }, t("activity_recording")));
    }
    return words.length ? words : "—";
  }

  // 未确认: open and nobody has acknowledged it; 未恢复: open (acknowledged or not).
  function alarmsCell(agent) {
    if (!agent.open_alarms) return el("span", { class: "alarm-count", "data-open": 0 }, "—");
    const unacked = agent.unacked_alarms || 0;
    return el("span", { class: "alarm-count has-alarms", "data-open": agent.open_alarms, "data-unacked": unacked },
      unacked ? el("span", { class: "unacked" }, t("alarms_unacked", { n: unacked })) : null,
      unacked ? " · " : null,
      el("span", { class: "open" }, t("alarms_open", { n: agent.open_alarms })));
  }

  // Problems first: not online with unacknowledged alarms, not online, unacknowledged alarms,
  // open alarms, a device not responding; then the rest by site and room.
  function rank(agent) {
    const away = isStale(agent);
    if (away && agent.unacked_alarms) return 0;
    if (away) return 1;
    if (agent.unacked_alarms) return 2;
    if (agent.open_alarms) return 3;
    return (agent.devices || []).some((d) => d.online === false) ? 4 : 5;
  }

  function row(agent) {
    return el("tr", { "data-agent": agent.agent_id, "data-state": agent.state, class: isStale(agent) ? "stale" : null },
      el("td", { class: "room" },
        el("a", { href: "/room/" + encodeURIComponent(agent.agent_id) }, agent.room || agent.agent_id),
        el("div", { class: "sub" }, agent.agent_id)),
      el("td", {}, agent.site),
      el("td", {}, stateBadge(agent.state)),
      el("td", {}, when(agent.last_seen)),
      el("td", { class: "activity-cell" }, activityCell(agent)),
      el("td", {}, devicesCell(agent)),
      el("td", { class: "num" }, alarmsCell(agent)));
  }

  function render() {
    const key = (a) => a.site + "\u0000" + a.room + "\u0000" + a.agent_id;
    const list = [...agents.values()].sort((a, b) => rank(a) - rank(b) || key(a).localeCompare(key(b)));
    const online = list.filter((a) => a.state === "online").length;
    const head = ["room", "site", "state", "last_seen", "activity", "devices", "open_alarms"].map((k) => el("th", {}, t(k)));
    main.replaceChildren(
      el("h1", {}, t("fleet")),
      filterBar(),
      el("p", { class: "summary", id: "summary" }, t("count", { n: list.length, online })),
      list.length
        ? el("table", { class: "fleet", id: "fleet" }, el("thead", {}, el("tr", {}, head)), el("tbody", {}, list.map(row)))
        : el("p", { class: "empty" }, t("no_agents")));
  }

  load(BOOT.data);
  listen("", refresh, reloadAll);
  setInterval(render, 30000); // keeps "last seen … ago" true
})();
