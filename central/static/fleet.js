// The fleet at a glance: one row per classroom, filters, live updates.
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

  function devicesCell(devices) {
    if (!devices.length) return "—";
    return el("ul", { class: "devices" }, devices.map((d) =>
      el("li", { class: d.online === false ? "device device-offline" : "device", "data-device": d.id },
        el("span", { class: "device-name" }, tr("kind_", d.kind) + " " + d.id),
        " ",
        el("span", { class: "device-state" }, deviceWords(d)))));
  }

  function row(agent) {
    return el("tr", { "data-agent": agent.agent_id, "data-state": agent.state },
      el("td", { class: "room" },
        el("a", { href: "/room/" + encodeURIComponent(agent.agent_id) }, agent.room || agent.agent_id),
        el("div", { class: "sub" }, agent.agent_id)),
      el("td", {}, agent.site),
      el("td", {}, stateBadge(agent.state)),
      el("td", {}, when(agent.last_seen)),
      el("td", {}, devicesCell(agent.devices || [])),
      el("td", { class: "num" },
        el("span", { class: agent.open_alarms ? "alarm-count has-alarms" : "alarm-count" }, agent.open_alarms)));
  }

  function render() {
    const list = [...agents.values()].sort((a, b) =>
      (a.site + "\u0000" + a.room + "\u0000" + a.agent_id).localeCompare(b.site + "\u0000" + b.room + "\u0000" + b.agent_id));
    const online = list.filter((a) => a.state === "online").length;
    const head = ["room", "site", "state", "last_seen", "devices", "open_alarms"].map((k) => el("th", {}, t(k)));
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
