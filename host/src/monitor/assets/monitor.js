// The monitor page: polls /api/status and redraws; follows a log.
"use strict";

const state = { polling: 2, failures: 0, log: null, logSeen: new Set(), logLast: null };

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null) continue;
    if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function cell(label, ...children) {
  return el("td", { "data-label": label }, ...children);
}

function statusCell(label, status, text, reason) {
  return cell(label, el("span", { class: "status " + status }, text,
    reason ? el("span", { class: "reason" }, reason) : null));
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "-";
  const s = Math.floor(seconds);
  if (s < 60) return seconds.toFixed(1) + "s";
  if (s < 3600) return Math.floor(s / 60) + "m " + String(s % 60).padStart(2, "0") + "s";
  if (s < 86400) return Math.floor(s / 3600) + "h " + String(Math.floor(s % 3600 / 60)).padStart(2, "0") + "m";
  return Math.floor(s / 86400) + "d " + String(Math.floor(s % 86400 / 3600)).padStart(2, "0") + "h";
}

function fill(tableId, rows) {
  const body = document.querySelector("#" + tableId + " tbody");
  body.replaceChildren(...rows);
}

function drawServices(services) {
  fill("services", services.map((s) => {
    const unregistered = s.status === "unregistered";
    const text = s.status === "locked" ? "locked by " + (s.locked_by || "someone")
      : unregistered ? "not registered" : s.status;
    const driver = s.class ? s.class + (s.plugin_api ? " (plugin-api " + s.plugin_api + ")" : "") : "-";
    const where = unregistered ? "this lab could not register it with " + s.nameserver
      : "on " + s.nameserver + (s.stale ? " (not answering: as last listed)" : "");
    return el("tr", { "data-service": s.name, "data-status": s.status },
      cell("Service", el("strong", {}, s.name), s.nameserver ? el("span", { class: "reason" }, where) : null),
      statusCell("Status", s.status, text, s.status === "unreachable" || unregistered ? s.reason : null),
      cell("Description", s.description || "-"),
      cell("Driver", driver),
      el("td", { class: "uri", "data-label": "URI" }, s.uri));
  }));
  document.getElementById("no-services").hidden = services.length > 0;
}

function drawNameservers(nameservers) {
  fill("nameservers", nameservers.map((ns) => el("tr", {},
    cell("Name server", el("strong", {}, ns.name)),
    el("td", { class: "address", "data-label": "Address" }, ns.address),
    statusCell("Status", ns.reachable ? "available" : "unreachable", ns.reachable ? "answering" : "unreachable", ns.error),
    cell("Services", ns.services))));
}

function drawComponents(components) {
  const section = document.getElementById("components-section");
  section.hidden = !components;
  if (!components) return;
  fill("components", components.map((c) => {
    const button = el("button", { type: "button", class: "log" }, "log");
    button.addEventListener("click", () => openLog(c.name, c.kind));
    return el("tr", { "data-component": c.name },
      cell("Component", el("strong", {}, c.name)),
      cell("Kind", c.kind),
      statusCell("Status", c.status, c.status),
      cell("PID", c.pid ?? "-"),
      cell("Uptime", duration(c.uptime_s)),
      cell("Restarts", c.restarts),
      cell("Last error", c.last_error || "-"),
      cell("Log", button));
  }));
}

function when(time) {
  return time ? time.replace("T", " ").replace(/\.\d+Z$/, " UTC") : "-";
}

function drawHosts(hosts, lab) {
  const section = document.getElementById("hosts-section");
  section.hidden = !hosts || hosts.length === 0;
  if (section.hidden) return;
  document.getElementById("lab-summary").textContent =
    lab.hosts_reachable + " of " + lab.hosts + " hosts answer; " +
    lab.configured_running + " of " + lab.configured + " configured components run (" +
    lab.running + " of " + lab.components + " in all)";
  fill("hosts", hosts.map((h) => {
    const components = h.status ? h.status.components : [];
    const running = components.filter((c) => c.status === "running").length;
    const button = el("button", { type: "button", class: "config" }, "configuration");
    button.addEventListener("click", () => openConfig(h.host));
    return el("tr", { "data-host": h.host, "data-reachable": String(h.reachable) },
      cell("Host", el("strong", {}, h.host)),
      statusCell("State", h.reachable ? "available" : "unreachable",
        h.reachable ? "reachable" : "unreachable since " + when(h.unreachable_since),
        h.reachable ? null : h.error + (h.last_seen ? "; last seen " + when(h.last_seen) : "")),
      cell("Running", h.status ? running + "/" + components.length + (h.reachable ? "" : " (as last seen)") : "-"),
      cell("Configuration", button));
  }));
  fill("lab-components", hosts.flatMap((h) => (h.status ? h.status.components : []).map((c) => {
    const button = el("button", { type: "button", class: "log" }, "log");
    button.addEventListener("click", () => openLog(c.name, c.kind, h.host));
    return el("tr", { "data-component": h.host + "/" + c.name },
      cell("Host/component", el("strong", {}, h.host + "/" + c.name)),
      cell("Kind", c.kind),
      statusCell("Status", h.reachable ? c.status : "unreachable", h.reachable ? c.status : c.status + " (as last seen)"),
      cell("Restarts", c.restarts),
      el("td", { class: "address", "data-label": "Address" }, c.address || "-"),
      cell("Last error", c.last_error || "-"),
      cell("Log", button));
  })));
}

async function openConfig(host) {
  state.log = null;
  const pre = document.getElementById("log");
  document.getElementById("log-title").textContent = "Configuration: " + host;
  document.getElementById("log-section").hidden = false;
  pre.textContent = "";
  try {
    const response = await fetch("/api/hosts/config?" + new URLSearchParams({ host }), { cache: "no-store" });
    const body = await response.json();
    pre.textContent = response.ok ? body.config : body.error;
  } catch (err) {
    pre.textContent = "the monitor does not answer (" + err.message + ")";
  }
}

function drawEvents(events) {
  const list = document.getElementById("events");
  list.replaceChildren(...events.slice(-20).reverse().map((e) => {
    const time = e.time.replace("T", " ").replace(/\.\d+Z$/, " UTC");
    const change = (e.from ? e.from + " → " : "") + e.to + (e.detail ? " (" + e.detail + ")" : "");
    return el("li", {}, time + " — " + e.service + ": " + change);
  }));
  document.getElementById("no-events").hidden = events.length > 0;
}

async function refresh() {
  try {
    const response = await fetch("/api/status", { cache: "no-store" });
    if (response.status === 503) throw new Error("starting");
    if (!response.ok) throw new Error("HTTP " + response.status);
    const status = await response.json();
    state.polling = status.polling_s || state.polling;
    state.failures = 0;
    drawServices(status.services);
    drawNameservers(status.nameservers);
    drawComponents(status.components);
    drawHosts(status.hosts, status.lab);
    drawEvents(status.events);
    const freshness = document.getElementById("freshness");
    freshness.className = "";
    freshness.textContent = "as of " + status.taken.replace("T", " ").replace(/\.\d+Z$/, " UTC") + ", every " + state.polling + " s";
  } catch (err) {
    state.failures += 1;
    const freshness = document.getElementById("freshness");
    freshness.className = "stale";
    freshness.textContent = "the monitor does not answer (" + err.message + "); retrying";
  }
  setTimeout(refresh, Math.max(200, state.polling * 1000));
}

function openLog(name, kind, host) {
  state.log = { name, kind, host };
  state.logSeen = new Set();
  state.logLast = null;
  document.getElementById("log").textContent = "";
  document.getElementById("log-title").textContent = "Log: " + kind + " " + (host ? host + "/" : "") + name;
  document.getElementById("log-section").hidden = false;
  pollLog(true);
}

async function pollLog(first) {
  const log = state.log;
  if (!log) return;
  const params = new URLSearchParams({ component: log.name, kind: log.kind });
  if (log.host) {
    // Another host's log: its last lines, asked again each round.
    params.set("host", log.host);
    params.set("lines", "200");
  } else if (first) params.set("lines", "200");
  else if (state.logLast) {
    // Everything written since the last look, however much.
    params.set("since", state.logLast);
    params.set("lines", "5000");
  } else params.set("lines", "200");
  try {
    const response = await fetch("/api/logs?" + params, { cache: "no-store" });
    const body = await response.json();
    if (state.log !== log) return;
    const pre = document.getElementById("log");
    if (!response.ok) {
      pre.textContent = body.error;
    } else {
      const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      if (log.host) {
        // Another host's log comes as its last lines, each round whole.
        pre.textContent = body.lines.join("\n") + "\n";
      } else {
        // `since` repeats the lines of the last millisecond: skip those seen.
        const fresh = body.lines.filter((line) => !state.logSeen.has(line));
        if (body.last !== state.logLast) state.logSeen = new Set();
        for (const line of body.lines) state.logSeen.add(line);
        state.logLast = body.last || state.logLast;
        if (fresh.length) pre.append(fresh.join("\n") + "\n");
      }
      if (atBottom) pre.scrollTop = pre.scrollHeight;
    }
  } catch (err) {
    // Retried at the next round.
  }
  if (document.getElementById("follow").checked && state.log === log) {
    setTimeout(() => pollLog(false), 1000);
  }
}

document.getElementById("close-log").addEventListener("click", () => {
  state.log = null;
  document.getElementById("log-section").hidden = true;
});
document.getElementById("follow").addEventListener("change", (event) => {
  if (event.target.checked) pollLog(false);
});
refresh();
