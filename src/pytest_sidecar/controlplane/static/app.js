// The control plane's web UI: plain JavaScript, no build step, no CDN. A bearer token
// entered here stays in memory (writes send it as a header); signing in also opens a
// browser session (an HttpOnly cookie the server accepts on reads only), so reloads,
// deep links and report links work without it. Every text shown is set with
// textContent (never innerHTML), so nothing a run reports can inject markup.
"use strict";

const state = { token: null, who: null, live: null, log: null, ticker: null, config: null };
const SVG = "http://www.w3.org/2000/svg";

function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function s(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  for (const child of children) node.append(child instanceof Node ? child : String(child));
  return node;
}

function headers(extra) {
  const all = Object.assign({}, extra || {});
  if (state.token) all["Authorization"] = "Bearer " + state.token;
  return all;
}

async function api(path, options) {
  const opts = Object.assign({ credentials: "same-origin" }, options || {});
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
  document.getElementById("main").replaceChildren(
    ...nodes.flat(Infinity).filter(node => node !== null && node !== undefined));
}

function when(seconds) {
  return seconds ? new Date(seconds * 1000).toLocaleString() : "–";
}

function elapsed(from, to) {
  if (!from) return "–";
  const total = Math.max(0, (to || Date.now() / 1000) - from);
  return total < 60 ? total.toFixed(1) + " s" : Math.floor(total / 60) + " min " +
    Math.round(total % 60) + " s";
}

function counts(run) {
  const c = run.counts;
  if (!c) return "–";
  return `${c.passed || 0} passed, ${(c.failed || 0) + (c.error || 0)} failed, ${c.skipped || 0} skipped`;
}

function selection(request) {
  return [request.markers ? "-m " + request.markers : "",
          request.keyword ? "-k " + request.keyword : "",
          request.strict ? "--sidecar-strict" : ""].filter(Boolean).join(" ") || "all";
}

function gateBadge(gate) {
  if (!gate) return h("span", { class: "muted" }, "–");
  return h("span", { class: "badge " + (gate.passed ? "ok" : "bad"),
                     title: gate.checks.map(c => c.detail).join("; ") },
           gate.passed ? "✓ gate" : "✗ gate");
}

function fmt(value) {
  return typeof value === "number" ? Number(value.toPrecision(4)) : (value ?? "–");
}

// Signing in

async function signIn(token) {
  state.token = token;
  try {
    state.who = await api("/api/session", { method: "POST" });
  } catch (error) {
    state.token = null;
    state.who = null;
    problem(error);
  }
  renderWho();
}

async function signOut() {
  try { await api("/api/session", { method: "DELETE" }); } catch (e) { /* gone already */ }
  state.token = null;
  state.who = null;
  renderWho();
  route();
}

async function restoreSession() {
  try { state.who = await api("/api/session"); } catch (e) { state.who = null; }
  renderWho();
}

function renderWho() {
  const form = document.getElementById("token-form");
  const who = document.getElementById("whoami");
  const signedIn = Boolean(state.who);
  form.hidden = signedIn && Boolean(state.token);
  who.hidden = !signedIn;
  who.replaceChildren(...(signedIn ? [
    h("span", { id: "signed-in" }, "Signed in as " + state.who.subject +
      (state.token ? "" : " (reads only: enter the token again to launch)")),
    h("button", { type: "button", class: "secondary", id: "sign-out", onclick: signOut },
      "Sign out")] : []));
}

// Runs

async function runsPage() {
  const { runs } = await api("/api/testruns");
  const options = (key) => [...new Set(runs.map(r => r.request[key]))].sort();
  const stateFilter = h("select", { id: "filter-state", "aria-label": "State" },
    h("option", { value: "" }, "any state"),
    ["queued", "running", "passed", "failed", "canceled", "timed_out", "error"]
      .map(v => h("option", { value: v }, v)));
  const suiteFilter = h("select", { id: "filter-suite", "aria-label": "Suite" },
    h("option", { value: "" }, "any suite"), options("suite").map(v => h("option", { value: v }, v)));
  const targetFilter = h("select", { id: "filter-target", "aria-label": "Target" },
    h("option", { value: "" }, "any target"), options("target").map(v => h("option", { value: v }, v)));
  const text = h("input", { id: "filter-text", type: "search", placeholder: "run id, -m, -k",
                            "aria-label": "Search runs" });
  const body = h("tbody", {});
  const render = () => {
    const wanted = text.value.trim().toLowerCase();
    const shown = runs.filter(run =>
      (!stateFilter.value || run.state === stateFilter.value) &&
      (!suiteFilter.value || run.request.suite === suiteFilter.value) &&
      (!targetFilter.value || run.request.target === targetFilter.value) &&
      (!wanted || (run.id + " " + selection(run.request)).toLowerCase().includes(wanted)));
    body.replaceChildren(...shown.map(run => h("tr", { "data-run": run.id },
      h("td", {}, h("a", { href: "#/runs/" + run.id }, run.id)),
      h("td", { class: run.state }, run.state),
      h("td", {}, run.request.target + " / " + run.request.suite),
      h("td", { class: "selection" }, selection(run.request)),
      h("td", {}, counts(run)),
      h("td", {}, elapsed(run.started_at, run.finished_at)),
      h("td", {}, gateBadge(run.gate)),
      h("td", { class: "muted" }, when(run.created_at)),
      h("td", {}, h("button", { type: "button", class: "secondary rerun",
                                onclick: () => rerun(run) }, "Re-run")))));
  };
  for (const control of [stateFilter, suiteFilter, targetFilter, text])
    control.addEventListener("input", render);
  render();
  show(h("h1", {}, "Runs"),
       runs.length ? [h("div", { class: "filters" }, stateFilter, suiteFilter, targetFilter, text),
         h("table", { id: "runs" }, h("thead", {}, h("tr", {}, ["Run", "State",
           "Target / suite", "Selection", "Tests", "Duration", "Gate", "Created", ""]
           .map(t => h("th", { scope: "col" }, t)))), body)]
       : h("p", {}, "No runs yet. ", h("a", { href: "#/launch" }, "Launch one.")));
}

async function rerun(run) {
  try {
    if (!state.token && !(state.config && state.config.auth_mode === "none"))
      throw new Error("enter your token above to launch runs (writes need it)");
    const again = await api("/api/testruns", { method: "POST",
      body: JSON.stringify(run.request), headers: { "Content-Type": "application/json" } });
    location.hash = "#/runs/" + again.id;
  } catch (error) { problem(error); }
}

async function launchPage() {
  const config = state.config = await api("/api/config");
  const defaults = config.load_defaults || {};
  const field = (id, label, input, hint) => [h("label", { for: id }, label),
    h("span", { class: "field" }, input, hint ? h("small", { class: "muted" }, hint) : null)];
  const form = h("form", { class: "launch", id: "launch-form" },
    field("target", "Target", h("select", { id: "target", name: "target" },
      config.targets.map(t => h("option", { value: t }, t)))),
    field("suite", "Suite", h("select", { id: "suite", name: "suite" },
      Object.entries(config.suites).map(([name, paths]) =>
        h("option", { value: name }, name + " (" + paths.join(", ") + ")")))),
    field("markers", "Markers (-m)", h("input", { id: "markers", name: "markers",
      list: "marker-list", placeholder: "e.g. not disruptive" }),
      "markers: " + (config.markers || []).join(", ")),
    h("datalist", { id: "marker-list" }, (config.markers || []).flatMap(m =>
      [h("option", { value: m }), h("option", { value: "not " + m })])),
    field("keyword", "Keyword (-k)", h("input", { id: "keyword", name: "keyword",
      placeholder: "e.g. health or rbac" }), "default: every test of the suite"),
    field("strict", "Strict", h("input", { id: "strict", name: "strict", type: "checkbox" }),
      "any skip fails the run (release runs)"),
    field("duration", "Load duration (s)", h("input", { id: "duration", type: "number",
      min: "1", max: "600", placeholder: String(defaults.duration ?? "") }),
      "default " + fmt(defaults.duration) + " s"),
    field("rate", "Load rate (req/s)", h("input", { id: "rate", type: "number", min: "0.1",
      step: "any", placeholder: String(defaults.rate ?? "") }),
      "default " + fmt(defaults.rate) + " req/s"),
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

// One run, live

async function runPage(id) {
  const run = await api("/api/testruns/" + id);
  const bar = h("progress", { id: "progress", max: "1", value: "0",
                              "aria-label": "tests finished" });
  const status = h("p", { id: "run-status", role: "status", "aria-live": "polite" },
                   run.state);
  const clock = h("span", { id: "elapsed", class: "muted" }, elapsed(run.started_at, run.finished_at));
  const tests = h("tbody", { id: "live-tests" });
  const causes = h("ul", { id: "live-causes" });
  const causesHeading = h("h2", { id: "causes-heading", hidden: true }, "Root causes so far");
  const finished = h("section", { id: "finished" });
  const log = h("pre", { id: "log", class: "log", "aria-label": "pytest output" });
  const active = run.state === "queued" || run.state === "running";
  const cancel = h("button", { class: "secondary", type: "button", onclick: async () => {
    try { await api("/api/testruns/" + id + "/cancel", { method: "POST" }); }
    catch (error) { problem(error); } } }, "Cancel");
  show(h("h1", {}, "Run " + id),
       h("p", { class: "muted" }, run.request.target + " / " + run.request.suite + " · " +
         selection(run.request)),
       h("p", {}, status, " ", clock), bar, active ? cancel : null,
       h("button", { type: "button", class: "secondary rerun", onclick: () => rerun(run) }, "Re-run"),
       causesHeading, causes,
       h("h2", {}, "Tests as they finish"),
       h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "Test"), h("th", {}, "Outcome"),
         h("th", {}, "Reason"))), tests),
       finished,
       h("details", { id: "log-panel", open: active }, h("summary", {}, "pytest output"), log));
  if (active && run.started_at) {
    state.ticker = setInterval(() => { clock.textContent = elapsed(run.started_at); }, 1000);
  }
  followLog(id, log);
  const rows = new Map();
  const failedReasons = new Map();
  let started = run.started_at;
  await follow(id, event => {
    if (event.type === "progress") {
      bar.max = Math.max(1, event.total);
      bar.value = event.completed;
      status.textContent = `running: ${event.completed}/${event.total} finished, ` +
                           `${event.failures} failed`;
    } else if (event.type === "test") {
      // A test whose teardown fails after its call passed reports twice: one row.
      const row = h("tr", { "data-nodeid": event.nodeid },
        h("td", {}, h("a", { href: "#/test/" + encodeURIComponent(event.nodeid) }, event.nodeid)),
        h("td", { class: event.outcome }, event.outcome), h("td", {}, event.reason || ""));
      if (rows.has(event.nodeid)) rows.get(event.nodeid).replaceWith(row);
      else tests.append(row);
      rows.set(event.nodeid, row);
      if (event.outcome === "failed" || event.outcome === "error") {
        failedReasons.set(event.nodeid, (event.reason || event.outcome).split("\n")[0]);
        const tally = new Map();
        for (const reason of failedReasons.values()) tally.set(reason, (tally.get(reason) || 0) + 1);
        causes.replaceChildren(...[...tally.entries()].sort((a, b) => b[1] - a[1])
          .map(([reason, n]) => h("li", {}, `${n} × ${reason}`)));
        causesHeading.hidden = false;
      }
    } else if (event.type === "state") {
      status.textContent = event.state;
      if (event.state === "running" && !started) {
        started = Date.now() / 1000;
        state.ticker = state.ticker || setInterval(() => { clock.textContent = elapsed(started); }, 1000);
      }
    } else if (event.type === "end") {
      status.textContent = "finished: " + event.state + (event.reason ? " (" + event.reason + ")" : "");
      status.className = event.state;
      clearInterval(state.ticker);
      cancel.remove();
      bar.value = bar.max;
      if (!failedReasons.size) { causesHeading.remove(); causes.remove(); }
      else causesHeading.textContent = "Root causes";
      renderFinished(id, finished, event);
      api("/api/testruns/" + id).then(done => {
        clock.textContent = elapsed(done.started_at, done.finished_at);
      }).catch(() => {});
    }
  });
}

// pytest's output as it is written (a chunked text body that ends with the run).
async function followLog(id, pre) {
  const token = {};
  state.log = token;
  try {
    const response = await fetch("/api/testruns/" + id + "/log", { headers: headers() });
    if (!response.ok) throw new Error(response.status + " on the log");
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    for (;;) {
      const { value, done } = await reader.read();
      if (done || state.log !== token) break;
      pre.append(decoder.decode(value, { stream: true }));
      pre.scrollTop = pre.scrollHeight;
    }
  } catch (error) { if (state.log === token) pre.append("\n[" + error.message + "]"); }
}

// Server-Sent Events over fetch; reconnects with Last-Event-ID, so nothing is shown twice
// or lost.
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

function evidenceTable(items) {
  const cell = value => typeof value === "object" && value !== null
    ? (Array.isArray(value) ? value.map(v => typeof v === "object" ? JSON.stringify(v) : v).join(", ")
       : evidenceTable([value]))
    : String(value);
  return h("table", { class: "evidence" }, h("tbody", {}, items.flatMap(item =>
    Object.entries(item).map(([key, value]) => h("tr", {}, h("th", { scope: "row" }, key),
      h("td", {}, cell(value)))))));
}

async function renderFinished(id, section, end) {
  let report = null;
  try { report = await api("/api/testruns/" + id + "/report.json"); } catch (e) { /* none */ }
  const links = h("p", { id: "reports" }, "Reports: ", ["html", "md", "json"].map(format => [
    h("a", { href: `/api/testruns/${id}/report.${format}`, class: "report-link",
             "data-format": format, target: "_blank", rel: "noopener" }, "report." + format),
    " (", h("a", { href: `/api/testruns/${id}/report.${format}?download=1`,
                   class: "report-download", "data-format": format, download: "" }, "download"),
    ") "]));
  const parts = [h("h2", {}, "Result"), h("p", {}, "Gate: ", gateBadge(end.gate), " ",
    end.gate ? end.gate.checks.map(c => (c.ok ? "✓ " : "✗ ") + c.detail).join(" · ") : ""),
    links];
  if (report) {
    const verdict = report.verdict || {};
    parts.push(h("h2", {}, "Conformance by profile"), h("table", { id: "profiles" },
      h("tbody", {}, Object.entries(verdict.profiles || {}).map(([name, text]) =>
        h("tr", {}, h("th", { scope: "row" }, name),
          h("td", { class: text === "conformant" ? "ok" : text === "not conformant" ? "bad" : "muted" },
            String(text)))))));
    const slos = verdict.slos || [];
    parts.push(h("h2", {}, "SLOs"), slos.length ? h("table", { id: "slos" },
      h("thead", {}, h("tr", {}, ["SLO", "Verdict", "Measured", "Threshold", "Samples"]
        .map(t => h("th", {}, t)))),
      h("tbody", {}, slos.map(slo => h("tr", {}, h("td", {}, slo.name),
        h("td", { class: slo.outcome }, slo.outcome), h("td", {}, fmt(slo.measured)),
        h("td", {}, fmt(slo.threshold)), h("td", {}, slo.samples ?? "–")))))
      : h("p", { class: "muted" }, "No SLO measured in this run."));
    const failed = (report.results || []).filter(r => r.outcome === "failed" || r.outcome === "error");
    parts.push(h("h2", {}, "Failures"), failed.length ? h("div", { id: "failures" },
      failed.map(r => h("details", { class: "failure" },
        h("summary", {}, r.nodeid),
        h("p", { class: "reason bad" }, r.reason || r.outcome),
        r.contract && r.contract.length ? h("p", { class: "muted" }, "Certifies " + r.contract.join(", ")) : null,
        r.evidence && r.evidence.length ? [h("h4", {}, "Evidence"), evidenceTable(r.evidence)] : null,
        r.reproduce ? [h("h4", {}, "Reproduce"), h("pre", { class: "reproduce" }, r.reproduce)] : null,
        h("p", {}, h("a", { href: "#/test/" + encodeURIComponent(r.nodeid) }, "History of this test")))))
      : h("p", {}, "No failures."));
  }
  section.replaceChildren(...parts);
}

// History

async function testPage(nodeid) {
  const found = await api("/api/history/test?nodeid=" + encodeURIComponent(nodeid));
  const strip = h("div", { id: "outcome-strip", class: "strip", role: "list" },
    found.runs.map(r => h("a", { href: "#/runs/" + r.run, class: "cell " + r.outcome,
                                 role: "listitem", title: `run ${r.run}: ${r.outcome}` },
                          r.outcome === "passed" ? "P" : r.outcome === "skipped" ? "S" : "F")));
  const first = found.first_failure;
  show(h("h1", {}, "Test history"), h("p", {}, h("code", {}, nodeid)),
    h("h2", {}, "Outcomes (oldest first)"), found.runs.length ? strip : h("p", {}, "Never run."),
    h("h2", {}, "Durations"), durationChart(found.runs),
    h("h2", {}, "First failure"), first ? h("p", { id: "first-failure" },
      h("a", { href: "#/runs/" + first.run }, "run " + first.run), ": ", first.reason || first.outcome)
      : h("p", { id: "first-failure" }, "It has not failed in these runs."));
}

function durationChart(runs) {
  const points = runs.filter(r => typeof r.duration_ms === "number")
    .map(r => ({ value: r.duration_ms / 1000, label: "run " + r.run }));
  return points.length ? chart("duration (s)", points, null) : h("p", { class: "muted" }, "No durations.");
}

// A line chart with axes, each point's value and an optional threshold line.
function chart(name, points, threshold) {
  const width = 560, height = 200, left = 52, right = 16, top = 16, bottom = 30;
  const values = points.map(p => p.value);
  const ceiling = Math.max(...values, threshold || 0) * 1.15 || 1;
  const x = i => left + (points.length > 1 ? i * (width - left - right) / (points.length - 1)
                                           : (width - left - right) / 2);
  const y = v => height - bottom - v / ceiling * (height - top - bottom);
  const svg = s("svg", { class: "chart", width, height, viewBox: `0 0 ${width} ${height}`,
                         role: "img", "aria-label": name + ": " + values.map(fmt).join(", ") });
  svg.append(s("line", { x1: left, x2: left, y1: top, y2: height - bottom, class: "axis" }),
             s("line", { x1: left, x2: width - right, y1: height - bottom, y2: height - bottom,
                         class: "axis" }));
  for (const tick of [0, 0.5, 1].map(f => f * ceiling)) {
    svg.append(s("text", { x: left - 6, y: y(tick) + 4, "text-anchor": "end", class: "tick" },
                 String(fmt(tick))));
  }
  points.forEach((p, i) => svg.append(s("text", { x: x(i), y: height - bottom + 16,
    "text-anchor": "middle", class: "tick" }, String(i + 1))));
  if (threshold) {
    svg.append(s("line", { x1: left, x2: width - right, y1: y(threshold), y2: y(threshold),
                           class: "threshold" }),
               s("text", { x: width - right, y: y(threshold) - 4, "text-anchor": "end",
                           class: "threshold-label" }, "threshold " + fmt(threshold)));
  }
  svg.append(s("polyline", { points: values.map((v, i) => x(i) + "," + y(v)).join(" "),
                             class: "series" }));
  points.forEach((p, i) => {
    const dot = s("circle", { cx: x(i), cy: y(p.value), r: 3, class: "point" });
    dot.append(s("title", {}, `${p.label}: ${fmt(p.value)}`));
    svg.append(dot, s("text", { x: x(i), y: y(p.value) - 7, "text-anchor": "middle",
                                class: "value" }, String(fmt(p.value))));
  });
  return svg;
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
      h("tbody", {}, flaky.map(f => h("tr", {},
        h("td", {}, h("a", { href: "#/test/" + encodeURIComponent(f.nodeid) }, f.nodeid)),
        h("td", {}, f.allure_flaky ? "yes" : "no"), h("td", {}, f.switch_rate),
        h("td", {}, f.history.join(" "))))))
      : h("p", {}, "No flaky test."),
    h("h2", {}, "SLO trends"),
    slo.trends.length ? h("div", { id: "trends" }, slo.trends.map(trend)) :
      h("p", { class: "muted" }, "No SLO figures yet (runs with -m slo measure them)."),
    h("h2", {}, "LLM latency figures"),
    h("p", { class: "muted" }, "Streamed chats of -m slo runs: TTFT, ITL, TPOT and E2E p90 " +
      "(ms, lower is better), output tokens/s and goodput (higher is better). " +
      "The run's report defines each."),
    (slo.figures || []).length ? h("div", { id: "figures" }, slo.figures.map(trend)) :
      h("p", { class: "muted" }, "No LLM figures yet (-m slo runs with streamed chats measure them)."),
    h("h2", {}, "Quality gate by run"),
    h("table", { id: "gates" }, h("tbody", {}, slo.gates.map(g => h("tr", {},
      h("td", {}, h("a", { href: "#/runs/" + g.id }, g.id)), h("td", { class: g.state }, g.state),
      h("td", {}, gateBadge(g.gate)))))));
}

function trend(series) {
  const points = series.points.map((p, i) => ({ value: p.value, label: "run " + (i + 1) }));
  const threshold = series.points[series.points.length - 1].threshold;
  const flag = series.regressed === true ? "regressed" : series.regressed === false ? "steady" : "not enough history";
  const unit = series.points[0].unit ? ` (${series.points[0].unit})` : "";
  return h("figure", {}, chart(series.name + unit, points, threshold),
    h("figcaption", { class: series.regressed ? "bad" : "" }, `${series.name}${unit}: ${flag} (${series.why})`));
}

async function route() {
  state.live = null;
  state.log = null;
  clearInterval(state.ticker);
  state.ticker = null;
  problem(null);
  const hash = location.hash || "#/";
  const run = hash.match(/^#\/runs\/([0-9a-f]{12})$/);
  const test = hash.match(/^#\/test\/(.+)$/);
  try {
    if (!state.config) state.config = await api("/api/config").catch(() => null);
    if (run) await runPage(run[1]);
    else if (test) await testPage(decodeURIComponent(test[1]));
    else if (hash === "#/launch") await launchPage();
    else if (hash === "#/history") await historyPage();
    else await runsPage();
  } catch (error) {
    show(h("h1", {}, "Cannot show this page"), h("p", { class: "bad" }, String(error.message)),
         /^40[13]/.test(error.message) ? h("p", {}, "Sign in above with a token of the right scope.") : null);
  }
  document.getElementById("main").focus();
}

document.getElementById("token-form").addEventListener("submit", async event => {
  event.preventDefault();
  const input = document.getElementById("token");
  const token = input.value.trim();
  input.value = "";
  if (token) await signIn(token);
  route();
});
window.addEventListener("hashchange", route);
restoreSession().then(route);
