// The control plane's web UI: plain JavaScript, no build step, no CDN. The token lives
// in memory only and goes out as a bearer header; every text shown is set with
// textContent (never innerHTML), so nothing a run reports can inject markup.
"use strict";

const state = { token: null, live: null };

function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function headers(extra) {
  const all = Object.assign({}, extra || {});
  if (state.token) all["Authorization"] = "Bearer " + state.token;
  return all;
}

async function api(path, options) {
  const opts = Object.assign({}, options || {});
  opts.headers = headers(opts.headers);
  const response = await fetch(path, opts);
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (e) { body = { message: text }; }
  if (!response.ok) {
    const message = (body && (body.message || body.code)) || response.statusText;
    throw new Error(response.status + ": " + message);
  }
  return body;
}

function problem(error) {
  const box = document.getElementById("problem");
  box.textContent = error ? String(error.message || error) : "";
  box.hidden = !error;
}

function show(...nodes) {
  const main = document.getElementById("main");
  main.replaceChildren(...nodes);
}

function when(seconds) {
  return seconds ? new Date(seconds * 1000).toLocaleString() : "–";
}

function duration(run) {
  if (!run.started_at) return "–";
  const end = run.finished_at || Date.now() / 1000;
  return (end - run.started_at).toFixed(1) + " s";
}

function counts(run) {
  const c = run.counts;
  if (!c) return "–";
  return `${c.passed || 0} passed, ${(c.failed || 0) + (c.error || 0)} failed, ${c.skipped || 0} skipped`;
}

function gateBadge(gate) {
  if (!gate) return h("span", { class: "muted" }, "–");
  return h("span", { class: "badge " + (gate.passed ? "ok" : "bad"),
                     title: gate.checks.map(c => c.detail).join("; ") },
           gate.passed ? "✓ gate" : "✗ gate");
}

// Pages

async function runsPage() {
  const { runs } = await api("/api/testruns");
  const rows = runs.map(run => h("tr", {},
    h("td", {}, h("a", { href: "#/runs/" + run.id }, run.id)),
    h("td", { class: run.state }, run.state),
    h("td", {}, run.request.target + " / " + run.request.suite),
    h("td", {}, counts(run)),
    h("td", {}, duration(run)),
    h("td", {}, gateBadge(run.gate)),
    h("td", { class: "muted" }, when(run.created_at))));
  show(h("h1", {}, "Runs"),
       runs.length ? h("table", {}, h("thead", {}, h("tr", {}, ["Run", "State", "Target / suite",
         "Tests", "Duration", "Gate", "Created"].map(t => h("th", { scope: "col" }, t)))),
         h("tbody", {}, rows))
       : h("p", {}, "No runs yet. ", h("a", { href: "#/launch" }, "Launch one.")));
}

async function launchPage() {
  const config = await api("/api/config");
  const field = (id, label, input) => [h("label", { for: id }, label), input];
  const form = h("form", { class: "launch", id: "launch-form" },
    field("target", "Target", h("select", { id: "target", name: "target" },
      config.targets.map(t => h("option", { value: t }, t)))),
    field("suite", "Suite", h("select", { id: "suite", name: "suite" },
      Object.entries(config.suites).map(([name, paths]) =>
        h("option", { value: name }, name + " (" + paths.join(", ") + ")")))),
    field("markers", "Markers (-m)", h("input", { id: "markers", name: "markers",
                                                  placeholder: "e.g. not slow" })),
    field("keyword", "Keyword (-k)", h("input", { id: "keyword", name: "keyword" })),
    field("strict", "Strict", h("input", { id: "strict", name: "strict", type: "checkbox" })),
    field("duration", "Load duration (s)", h("input", { id: "duration", type: "number",
                                                        min: "1", max: "600" })),
    field("rate", "Load rate (req/s)", h("input", { id: "rate", type: "number", min: "0.1",
                                                    step: "any" })),
    h("button", { type: "submit" }, "Launch run"));
  form.addEventListener("submit", async event => {
    event.preventDefault();
    const value = id => document.getElementById(id).value.trim();
    const body = { target: value("target"), suite: value("suite"),
                   strict: document.getElementById("strict").checked };
    if (value("markers")) body.markers = value("markers");
    if (value("keyword")) body.keyword = value("keyword");
    const load = {};
    if (value("duration")) load.duration = Number(value("duration"));
    if (value("rate")) load.rate = Number(value("rate"));
    if (Object.keys(load).length) body.load = load;
    try {
      const run = await api("/api/testruns", { method: "POST", body: JSON.stringify(body),
        headers: { "Content-Type": "application/json" } });
      location.hash = "#/runs/" + run.id;
    } catch (error) { problem(error); }
  });
  show(h("h1", {}, "Launch a run"), form);
}

async function runPage(id) {
  const run = await api("/api/testruns/" + id);
  const bar = h("progress", { id: "progress", max: "1", value: "0",
                              "aria-label": "tests finished" });
  const status = h("p", { id: "run-status", role: "status", "aria-live": "polite" },
                   run.state);
  const tests = h("tbody", { id: "live-tests" });
  const causes = h("ul", { id: "live-causes" });
  const finished = h("section", { id: "finished" });
  const cancel = h("button", { class: "secondary", type: "button", onclick: async () => {
    try { await api("/api/testruns/" + id + "/cancel", { method: "POST" }); }
    catch (error) { problem(error); } } }, "Cancel");
  show(h("h1", {}, "Run " + id),
       h("p", { class: "muted" }, run.request.target + " / " + run.request.suite +
         (run.request.markers ? " -m " + run.request.markers : "") +
         (run.request.keyword ? " -k " + run.request.keyword : "")),
       status, bar, run.state === "queued" || run.state === "running" ? cancel : null,
       h("h2", {}, "Root causes so far"), causes,
       h("h2", {}, "Tests as they finish"),
       h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "Test"), h("th", {}, "Outcome"),
         h("th", {}, "Reason"))), tests),
       finished);
  // One row per test: a test whose teardown fails after its call passed gets a second
  // event, which updates its row (and the root causes) instead of adding a row.
  const rows = new Map();
  const failedReasons = new Map();
  await follow(id, event => {
    if (event.type === "progress") {
      bar.max = Math.max(1, event.total);
      bar.value = event.completed;
      status.textContent = `running: ${event.completed} of ${event.total} finished, ` +
                           `${event.failures} failed`;
    } else if (event.type === "test") {
      const row = h("tr", { "data-nodeid": event.nodeid },
        h("td", {}, event.nodeid), h("td", { class: event.outcome }, event.outcome),
        h("td", {}, event.reason || ""));
      if (rows.has(event.nodeid)) rows.get(event.nodeid).replaceWith(row);
      else tests.append(row);
      rows.set(event.nodeid, row);
      if (event.outcome === "failed" || event.outcome === "error") {
        failedReasons.set(event.nodeid, (event.reason || event.outcome).split("\n")[0]);
        const counts = new Map();
        for (const reason of failedReasons.values()) counts.set(reason, (counts.get(reason) || 0) + 1);
        causes.replaceChildren(...[...counts.entries()].sort((a, b) => b[1] - a[1])
          .map(([reason, n]) => h("li", {}, `${n} × ${reason}`)));
      }
    } else if (event.type === "state") {
      status.textContent = event.state;
    } else if (event.type === "end") {
      status.textContent = "finished: " + event.state + (event.reason ? " (" + event.reason + ")" : "");
      status.className = event.state;
      cancel.remove();
      bar.value = bar.max;
      renderFinished(id, finished, event);
    }
  });
}

// Server-Sent Events over fetch (EventSource cannot send a bearer header); reconnects
// with Last-Event-ID, so nothing is shown twice or lost.
async function follow(id, onEvent) {
  const token = {};
  state.live = token;
  let last = 0;
  while (state.live === token) {
    try {
      const response = await fetch("/api/testruns/" + id + "/events",
        { headers: headers(last ? { "Last-Event-ID": String(last) } : {}) });
      if (!response.ok) throw new Error(response.status + " on the event stream");
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done || state.live !== token) break;
        buffer += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const fields = {};
          for (const line of block.split("\n")) {
            const at = line.indexOf(":");
            if (at > 0) fields[line.slice(0, at)] = line.slice(at + 1).trimStart();
          }
          if (!fields.data) continue;
          last = Number(fields.id) || last;
          const event = JSON.parse(fields.data);
          onEvent(event);
          if (event.type === "end") { state.live = null; return; }
        }
      }
    } catch (error) { problem(error); }
    if (state.live === token) await new Promise(resolve => setTimeout(resolve, 1000));
  }
}

async function renderFinished(id, section, end) {
  let report = null;
  try { report = await api("/api/testruns/" + id + "/report.json"); } catch (e) { /* none */ }
  const links = h("p", {}, "Reports: ", ["json", "md", "html"].map(fmt =>
    h("a", { href: "#", class: "report-link", "data-format": fmt, onclick: async event => {
      event.preventDefault();
      try {
        const response = await fetch("/api/testruns/" + id + "/report." + fmt,
                                     { headers: headers() });
        if (!response.ok) throw new Error(response.status + ": no " + fmt + " report");
        const url = URL.createObjectURL(await response.blob());
        window.open(url, "_blank");
      } catch (error) { problem(error); }
    } }, "report." + fmt, " ")));
  const parts = [h("h2", {}, "Result"), h("p", {}, "Gate: ", gateBadge(end.gate), " ",
    end.gate ? end.gate.checks.map(c => (c.ok ? "✓ " : "✗ ") + c.detail).join(" · ") : ""),
    links];
  if (report) {
    const verdict = report.verdict || {};
    parts.push(h("h2", {}, "Conformance by profile"), h("table", { id: "profiles" },
      h("tbody", {}, Object.entries(verdict.profiles || {}).map(([name, text]) =>
        h("tr", {}, h("th", { scope: "row" }, name), h("td", {}, String(text)))))));
    const slos = verdict.slos || [];
    parts.push(h("h2", {}, "SLOs"), slos.length ? h("table", { id: "slos" },
      h("thead", {}, h("tr", {}, ["SLO", "Verdict", "Measured", "Threshold", "Samples"]
        .map(t => h("th", {}, t)))),
      h("tbody", {}, slos.map(s => h("tr", {}, h("td", {}, s.name),
        h("td", { class: s.outcome }, s.outcome), h("td", {}, fmt(s.measured)),
        h("td", {}, fmt(s.threshold)), h("td", {}, s.samples ?? "–")))))
      : h("p", { class: "muted" }, "No SLO measured in this run."));
    const failed = (report.results || []).filter(r => r.outcome === "failed" || r.outcome === "error");
    parts.push(h("h2", {}, "Failures"), failed.length ? h("div", { id: "failures" },
      failed.map(r => h("details", {}, h("summary", {}, r.nodeid + ": " + (r.reason || r.outcome)),
        h("pre", {}, JSON.stringify({ contract: r.contract, evidence: r.evidence,
                                      reproduce: r.reproduce }, null, 2)))))
      : h("p", {}, "No failures."));
  }
  section.replaceChildren(...parts);
}

function fmt(value) {
  return typeof value === "number" ? Number(value.toPrecision(4)) : (value ?? "–");
}

async function historyPage() {
  const [tests, slo] = await Promise.all([api("/api/history/tests"), api("/api/history/slo")]);
  const flaky = tests.flaky;
  show(h("h1", {}, "History"),
    h("h2", {}, "Flaky tests"),
    h("p", { class: "muted" }, `Over the last ${tests.runs} runs with results. Allure's rule: ` +
      "failed, passed since, failed again; and the outcome switch rate."),
    flaky.length ? h("table", { id: "flaky" }, h("thead", {}, h("tr", {},
      ["Test", "Allure flaky", "Switch rate", "Outcomes (oldest first)"].map(t => h("th", {}, t)))),
      h("tbody", {}, flaky.map(f => h("tr", {}, h("td", {}, f.nodeid),
        h("td", {}, f.allure_flaky ? "yes" : "no"), h("td", {}, f.switch_rate),
        h("td", {}, f.history.join(" "))))))
      : h("p", {}, "No flaky test."),
    h("h2", {}, "SLO trends"),
    slo.trends.length ? h("div", { id: "trends" }, slo.trends.map(trend)) :
      h("p", { class: "muted" }, "No SLO figures yet (runs with -m slo measure them)."),
    h("h2", {}, "Quality gate by run"),
    h("table", { id: "gates" }, h("tbody", {}, slo.gates.map(g => h("tr", {},
      h("td", {}, h("a", { href: "#/runs/" + g.id }, g.id)), h("td", { class: g.state }, g.state),
      h("td", {}, gateBadge(g.gate)))))));
}

function trend(series) {
  const width = 360, height = 90, pad = 8;
  const values = series.points.map(p => p.value);
  const top = Math.max(...values, ...series.points.map(p => p.threshold || 0)) || 1;
  const x = i => pad + (values.length > 1 ? i * (width - 2 * pad) / (values.length - 1) : 0);
  const y = v => height - pad - v / top * (height - 2 * pad);
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("class", "trend");
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", series.name + ": " + values.map(v => fmt(v)).join(", "));
  const line = document.createElementNS(ns, "polyline");
  line.setAttribute("points", values.map((v, i) => x(i) + "," + y(v)).join(" "));
  line.setAttribute("fill", "none");
  line.setAttribute("stroke", "#0b5cad");
  line.setAttribute("stroke-width", "2");
  svg.append(line);
  const threshold = series.points[series.points.length - 1].threshold;
  if (threshold) {
    const rule = document.createElementNS(ns, "line");
    for (const [k, v] of [["x1", pad], ["x2", width - pad], ["y1", y(threshold)], ["y2", y(threshold)]])
      rule.setAttribute(k, v);
    rule.setAttribute("stroke", "#a40e26");
    rule.setAttribute("stroke-dasharray", "4 3");
    svg.append(rule);
  }
  const flag = series.regressed === true ? "regressed" : series.regressed === false ? "steady" : "not enough history";
  return h("figure", {}, svg, h("figcaption", { class: series.regressed ? "bad" : "" },
    `${series.name}: ${flag} (${series.why})`));
}

async function route() {
  state.live = null;
  problem(null);
  const hash = location.hash || "#/";
  const match = hash.match(/^#\/runs\/([0-9a-f]{12})$/);
  try {
    if (match) await runPage(match[1]);
    else if (hash === "#/launch") await launchPage();
    else if (hash === "#/history") await historyPage();
    else await runsPage();
  } catch (error) {
    show(h("h1", {}, "Cannot show this page"), h("p", { class: "bad" }, String(error.message)),
         /^40[13]/.test(error.message) ? h("p", {}, "Enter a token with the right scope above.") : null);
  }
  document.getElementById("main").focus();
}

document.getElementById("token-form").addEventListener("submit", event => {
  event.preventDefault();
  const input = document.getElementById("token");
  state.token = input.value.trim() || null;
  input.value = "";
  route();
});
window.addEventListener("hashchange", route);
route();
