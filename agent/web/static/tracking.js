// Auto-tracking on the classroom page: a switch per tracking camera (teachers turn it off when it
// distracts), what it is doing in words, and the picture it analyses with its zones and target
// drawn, refreshed a few times a second. Text nodes only.
"use strict";

(() => {
  const REFRESH_MS = 500;
  const panels = new Map(); // camera id -> { node, toggle, words, img }

  function panel(camera) {
    const toggle = el("button", { type: "button", class: "switch", role: "switch", "aria-checked": "false",
      "data-action": "tracking", "data-camera": camera.camera }, t("tracking"));
    const words = el("span", { class: "tracking-state" });
    const img = el("img", { class: "tracking-view", alt: t("tracking_view"), hidden: true });
    toggle.addEventListener("click", () => {
      const on = toggle.getAttribute("aria-checked") === "true";
      send(on ? "tracking.disable" : "tracking.enable", { camera: camera.camera });
    });
    const node = el("section", { class: "tracking", "data-camera": camera.camera, "data-state": "off" },
      el("div", { class: "row" }, toggle, el("span", { class: "sub" }, t("tracking_role_" + camera.role)), words),
      img);
    const card = document.querySelector('.card.camera[data-device="' + CSS.escape(camera.camera) + '"]');
    (card || document.getElementById("controls")).append(node);
    return { node, toggle, words, img };
  }

  // The newest picture, fetched again once the last one has shown; only while tracking is on.
  function refresh(camera, parts) {
    const next = () => setTimeout(() => refresh(camera, parts), REFRESH_MS);
    if (parts.node.dataset.state === "off" || document.hidden) {
      parts.img.hidden = true;
      next();
      return;
    }
    const img = new Image();
    img.onload = () => {
      parts.img.src = img.src;
      parts.img.hidden = false;
      next();
    };
    img.onerror = next;
    img.src = "/page/tracking/" + encodeURIComponent(camera) + ".jpg?at=" + Date.now();
  }

  function words(status) {
    if (!status.enabled) return t("tracking_off");
    if (status.state === "paused") return t("tracking_paused", { seconds: status.paused_s });
    if (status.writing) return t("tracking_writing");
    return t("tracking_" + status.state);
  }

  function show(view) {
    for (const status of view.tracking || []) {
      const parts = panels.get(status.camera);
      if (!parts) continue;
      parts.toggle.setAttribute("aria-checked", status.enabled ? "true" : "false");
      parts.toggle.classList.toggle("on", Boolean(status.enabled));
      parts.node.dataset.state = status.enabled ? status.state : "off";
      parts.words.textContent = words(status);
    }
  }

  for (const camera of LAYOUT.tracking || []) {
    const parts = panel(camera);
    panels.set(camera.camera, parts);
    refresh(camera.camera, parts);
  }
  VIEW_HOOKS.push(show);
  show(view);
})();
