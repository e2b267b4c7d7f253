// The monitor page: polls /api/status and /api/metrics and redraws;
// draws each service's charts (inline SVG, no library); follows a log.
"use strict";

const state = { polling: 2, failures: 0, log: null, logSeen: new Set(), logLast: null };
// The last /api/metrics, by "location|service"; the services whose
// details are open; their metadata, once asked.
const calls = { byKey: new Map(), open: new Set(), metadata: new Map() };

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

// "location|object" of a PYRO: URI, as /api/metrics keys its services.
function uriKey(uri) {
  const match = /^PYRO:([^@]*)@(.*)$/.exec(uri || "");
  return match ? match[2] + "|" + match[1] : null;
}

function seconds(s) {
  if (s === null || s === undefined) return "-";
  if (s < 0.001) return (s * 1e6).toFixed(0) + " µs";
  if (s < 1) return (s * 1000).toFixed(s < 0.01 ? 2 : 1) + " ms";
  return s.toFixed(2) + " s";
}

function bytes(n) {
  if (n < 1024) return n + " B";
  if (n < 1048576) return (n / 1024).toFixed(1) + " KiB";
  if (n < 1073741824) return (n / 1048576).toFixed(1) + " MiB";
  return (n / 1073741824).toFixed(2) + " GiB";
}

function rate(r) {
  if (r === 0) return "0/s";
  return (r >= 10 ? r.toFixed(0) : r >= 1 ? r.toFixed(1) : r.toPrecision(2)) + "/s";
}

// "N calls, E errors, p50 X": a service's or method's counts in a line.
function callSummary(m) {
  return m.calls + (m.calls === 1 ? " call" : " calls") +
    (m.errors ? ", " + m.errors + (m.errors === 1 ? " error" : " errors") : "") +
    (m.p50_s !== null ? ", p50 " + seconds(m.p50_s) : "");
}

function drawServices(services) {
  fill("services", services.map((s) => {
    const counted = calls.byKey.get(uriKey(s.uri));
    const unregistered = s.status === "unregistered";
    const text = s.status === "locked" ? "locked by " + (s.locked_by || "someone")
      : unregistered ? "not registered" : s.status;
    const driver = s.class ? s.class + (s.plugin_api ? " (plugin-api " + s.plugin_api + ")" : "") : "-";
    const where = unregistered ? "this lab could not register it with " + s.nameserver
      : "on " + s.nameserver + (s.stale ? " (not answering: as last listed)" : "");
    return el("tr", { "data-service": s.name, "data-status": s.status },
      cell("Service", el("strong", {}, s.name), s.nameserver ? el("span", { class: "reason" }, where) : null),
      statusCell("Status", s.status, text, s.status === "unreachable" || unregistered ? s.reason : null),
      cell("Calls", counted ? callSummary(counted) : "-"),
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

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  for (const child of children) node.append(child);
  return node;
}

// A round number at least `value`: 1, 2 or 5 times a power of ten.
function ceiling(value) {
  if (!(value > 0)) return 1;
  const power = Math.pow(10, Math.floor(Math.log10(value)));
  for (const step of [1, 2, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

function clock(t) {
  return new Date(t * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

// A line chart of `lines` ({key, label, color}) over `points`, from
// `since` to now, values written with `format`.
function chart(title, points, lines, format, since, now) {
  const width = 320, height = 130, left = 56, bottom = 18, top = 8, right = 6;
  const values = points.flatMap((p) => lines.map((l) => p[l.key]).filter((v) => v !== null && v !== undefined));
  const max = ceiling(Math.max(0, ...values));
  const span = Math.max(1, now - since);
  const x = (t) => left + (t - since) / span * (width - left - right);
  const y = (v) => top + (1 - v / max) * (height - top - bottom);
  const label = (text, attrs) => svg("text", attrs, text);
  const plot = svg("svg", {
    class: "chart", viewBox: "0 0 " + width + " " + height, role: "img",
    "aria-label": title, "data-points": String(points.length), "data-max": String(Math.max(0, ...values)),
  },
  svg("line", { class: "axis", x1: left, y1: top, x2: left, y2: height - bottom }),
  svg("line", { class: "axis", x1: left, y1: height - bottom, x2: width - right, y2: height - bottom }),
  label(format(max), { x: left - 4, y: top + 8, "text-anchor": "end" }),
  label(format(0), { x: left - 4, y: height - bottom, "text-anchor": "end" }),
  label(clock(since), { x: left, y: height - 4 }),
  label("now", { x: width - right, y: height - 4, "text-anchor": "end" }));
  for (const line of lines) {
    const drawn = points.filter((p) => p[line.key] !== null && p[line.key] !== undefined);
    const coordinates = drawn.map((p) => x(p.t).toFixed(1) + "," + y(p[line.key]).toFixed(1));
    plot.append(svg("polyline", { class: "line", "data-line": line.key, stroke: line.color, points: coordinates.join(" ") }));
    // A lone point draws no line: a dot shows it.
    if (drawn.length < 3) {
      for (const p of drawn) plot.append(svg("circle", { cx: x(p.t), cy: y(p[line.key]), r: 2, fill: line.color }));
    }
  }
  const legend = lines.map((l) => el("span", { class: "legend", style: "color:" + l.color }, "— " + l.label));
  return el("figure", { class: "chart" }, el("figcaption", {}, title, " ", ...legend), plot);
}

function methodTable(methods) {
  const head = el("tr", {}, ...["Method", "Calls", "Errors", "In flight", "Mean", "p50", "p99", "In", "Out"].map((h) => el("th", {}, h)));
  const rows = methods.map((m) => {
    const classes = Object.entries(m.errors_by_class).map(([k, v]) => k + " " + v).join(", ");
    return el("tr", { "data-method": m.method },
      cell("Method", el("code", {}, m.method)),
      cell("Calls", m.calls),
      cell("Errors", m.errors ? m.errors + " (" + classes + ")" : "0"),
      cell("In flight", m.in_flight),
      cell("Mean", seconds(m.mean_s)),
      cell("p50", seconds(m.p50_s)),
      cell("p99", seconds(m.p99_s)),
      cell("In", bytes(m.bytes_in)),
      cell("Out", bytes(m.bytes_out)));
  });
  return el("table", { class: "methods" }, el("thead", {}, head), el("tbody", {}, ...rows));
}

function metadataLine(name) {
  const known = calls.metadata.get(name);
  if (!known) return el("p", { class: "metadata" }, "methods: asking its daemon…");
  if (known.error) return el("p", { class: "metadata" }, "methods: " + known.error);
  const list = (items) => items.length ? items.join(", ") : "none";
  return el("div", { class: "metadata" },
    el("p", {}, el("strong", {}, "Methods: "), list(known.methods)),
    el("p", {}, el("strong", {}, "Oneway: "), list(known.oneway)),
    el("p", {}, el("strong", {}, "Properties: "), list(known.attrs)));
}

async function askMetadata(name) {
  try {
    const response = await fetch("/api/metadata?" + new URLSearchParams({ service: name }), { cache: "no-store" });
    const body = await response.json();
    calls.metadata.set(name, response.ok ? body : { error: body.error });
  } catch (err) {
    calls.metadata.set(name, { error: "the monitor does not answer (" + err.message + ")" });
  }
  if (calls.view) drawCalls(calls.view);
}

function drawCalls(view) {
  calls.view = view;
  calls.byKey = new Map();
  const section = document.getElementById("calls-section");
  const cards = [];
  const now = Date.now() / 1000;
  for (const daemon of view.daemons) {
    for (const service of daemon.services) {
      calls.byKey.set(daemon.location + "|" + service.service, service);
      const key = daemon.location + "|" + service.service;
      const points = service.points;
      const since = Math.max(now - view.window_s, points.length ? points[0].t - view.step_s : now - 60);
      const details = el("details", { "data-service": service.service, "data-daemon": daemon.daemon },
        el("summary", {}, el("strong", {}, service.service), " on " + daemon.daemon + " (" + daemon.location + "): ",
          el("span", { class: "totals" }, callSummary(service) +
            (service.p99_s !== null ? ", p99 " + seconds(service.p99_s) : "") +
            (service.in_flight ? ", " + service.in_flight + " running" : "") +
            (service.locks_taken ? ", " + service.locks_taken + " locks taken" : ""))),
        el("div", { class: "charts" },
          chart("Call rate", points, [{ key: "rate", label: "calls/s", color: "#1a73e8" }], rate, since, now),
          chart("Latency", points, [{ key: "p50_s", label: "p50", color: "#1b7f3b" }, { key: "p99_s", label: "p99", color: "#a65e00" }], seconds, since, now),
          chart("Errors", points, [{ key: "errors", label: "errors/s", color: "#b3261e" }], rate, since, now)),
        service.methods.length ? methodTable(service.methods) : el("p", { class: "empty" }, "No calls yet."),
        metadataLine(service.service));
      if (calls.open.has(key)) details.open = true;
      details.addEventListener("toggle", () => {
        if (details.open) {
          calls.open.add(key);
          if (!calls.metadata.has(service.service)) askMetadata(service.service);
        } else calls.open.delete(key);
      });
      cards.push(details);
    }
  }
  document.getElementById("calls").replaceChildren(...cards);
  section.hidden = cards.length === 0;
}

async function refreshCalls() {
  try {
    const response = await fetch("/api/metrics", { cache: "no-store" });
    if (response.ok) drawCalls(await response.json());
  } catch (err) {
    // Shown as the status's failure; retried at the next round.
  }
}

async function refresh() {
  try {
    const response = await fetch("/api/status", { cache: "no-store" });
    if (response.status === 503) throw new Error("starting");
    if (!response.ok) throw new Error("HTTP " + response.status);
    const status = await response.json();
    await refreshCalls();
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
