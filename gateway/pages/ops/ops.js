// The ops page: reads GET /v1/ops/summary (on start, every few seconds,
// and at most every 2 s while order events arrive) and GET /v1/stream
// with the API token the user gives, kept in sessionStorage. The stream
// is read through fetch (an EventSource cannot send Authorization) and
// parsed here as Server-Sent Events; after an error it reconnects with
// Last-Event-ID. Counts are the summary's, exact: an order event only
// triggers a re-fetch, it is not applied to them here. Charts are inline
// SVG drawn here. Nothing is loaded from elsewhere.
//
// The review queue reads GET /v1/holds?limit=20 beside the summary (role
// ops: a node without the queue answers 503, and the panel says so; the
// rest of the page works on). Release and Cancel ask for the reviewer's
// reason inline and POST /v1/holds/{id}/decide; a refused decision shows
// its problem's detail in the row. A row being decided, or showing an
// error, is kept across re-fetches. The risk score expands into the
// contributions of GET /v1/orders/{id}/risk, as numbers and bars.
"use strict";

(() => {
  const TOKEN_KEY = "ordergrid.ops.token";
  const SUMMARY_EVERY_MS = 5000; // the periodic re-fetch
  const REFRESH_AFTER_EVENT_MS = 500; // at most two re-fetches a second on events: a move shows within a second
  const FEED_MAX = 50;
  const RETRY_MIN_MS = 1000;
  const RETRY_MAX_MS = 15000;
  const BUFFER_MAX_CHARS = 4 << 20; // an event block larger than this is dropped
  const HOLDS_LISTED_MAX = 20; // the oldest held orders the panel shows
  const HOLD_REASONS = ["limit", "address", "risk", "duplicate"];
  const DECISION_REASON_MAX = 512; // as the API's
  const CONTRIBUTIONS_SHOWN_MAX = 20; // the largest contributions a risk explanation lists
  const HOLD_COLUMNS = 9;

  const $ = (id) => document.getElementById(id);
  const SVG_NS = "http://www.w3.org/2000/svg";

  let session = null; // the running connection: {token, abort, timers}

  function setConnection(state, text) {
    const el = $("connection");
    el.dataset.state = state;
    el.textContent = text;
  }

  function setMessage(kind, text) {
    const el = $("message");
    el.dataset.kind = kind;
    el.textContent = text;
  }

  // authProblem turns a 401 or 403 into a message and stops the session.
  async function authProblem(res) {
    let detail = "";
    try {
      const p = await res.json();
      detail = p.detail || p.title || "";
    } catch (_) { /* not problem+json */ }
    if (res.status === 401) {
      setMessage("error", "The token was not accepted (401): check it and connect again. " + detail);
    } else {
      setMessage("error", "This token may not read the ops page (403): it needs role ops or admin. " + detail);
    }
    stop("error", res.status === 401 ? "unauthenticated" : "forbidden");
  }

  function headers(token, extra) {
    return Object.assign({ Authorization: "Bearer " + token, Accept: "application/json" }, extra || {});
  }

  // ---- the summary ----

  async function loadSummary(s) {
    if (s !== session) return null;
    let res;
    try {
      res = await fetch("/v1/ops/summary", { headers: headers(s.token), signal: s.abort.signal, cache: "no-store" });
    } catch (err) {
      if (s === session && err.name !== "AbortError") setMessage("error", "Cannot reach the node: " + err.message);
      return null;
    }
    if (s !== session) return null;
    if (res.status === 401 || res.status === 403) {
      await authProblem(res);
      return null;
    }
    if (!res.ok) {
      setMessage("error", "The summary failed: HTTP " + res.status);
      return null;
    }
    const sum = await res.json();
    if (s !== session) return null;
    if ($("message").dataset.kind === "error") setMessage("none", "");
    render(sum);
    return sum;
  }

  function scheduleRefresh(s) {
    if (s.refreshTimer) return;
    const wait = Math.max(0, s.lastSummary + REFRESH_AFTER_EVENT_MS - Date.now());
    s.refreshTimer = setTimeout(() => {
      s.refreshTimer = null;
      s.lastSummary = Date.now();
      loadSummary(s);
      loadHolds(s);
    }, wait);
  }

  // ---- rendering ----

  function text(v) {
    return v === undefined || v === null ? "–" : String(v);
  }

  function cell(row, value, numeric) {
    const td = document.createElement("td");
    td.textContent = text(value);
    if (numeric) td.className = "num";
    row.appendChild(td);
    return td;
  }

  function renderCounts(dim, values) {
    const body = $("counts-" + dim).tBodies[0];
    body.replaceChildren();
    const entries = Object.entries(values || {}).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    for (const [value, n] of entries) {
      const tr = document.createElement("tr");
      tr.dataset.value = value;
      const th = document.createElement("th");
      th.scope = "row";
      th.textContent = value === "" ? "(none)" : value === "~other" ? "(others)" : value;
      tr.appendChild(th);
      const td = cell(tr, n, true);
      td.dataset.count = dim + ":" + value;
      body.appendChild(tr);
    }
    if (entries.length === 0) {
      const tr = document.createElement("tr");
      const td = cell(tr, "no orders", false);
      td.colSpan = 2;
      body.appendChild(tr);
    }
  }

  function renderChart(id, series, colors, unit) {
    const fig = $(id);
    const w = 600, h = 140, pad = 4;
    let maxV = 0;
    for (const s of series) for (const v of s) maxV = Math.max(maxV, v);
    const top = maxV > 0 ? maxV : 1;
    const svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("viewBox", "0 0 " + w + " " + h);
    svg.setAttribute("role", "img");
    const last = series.map((s) => (s.length ? s[s.length - 1] : 0));
    const label = fig.querySelector("figcaption").textContent.split(":")[0] + ": last " + last.join(" / ") + " " + unit + ", peak " + maxV + " " + unit;
    svg.setAttribute("aria-label", label);
    const title = document.createElementNS(SVG_NS, "title");
    title.textContent = label;
    svg.appendChild(title);
    const axis = document.createElementNS(SVG_NS, "text");
    axis.setAttribute("x", "6");
    axis.setAttribute("y", "14");
    axis.setAttribute("font-size", "12");
    axis.setAttribute("fill", "#1b1b1b");
    axis.textContent = "peak " + maxV + " " + unit;
    svg.appendChild(axis);
    series.forEach((s, i) => {
      if (s.length < 2) return;
      const pts = s.map((v, j) => {
        const x = pad + (j * (w - 2 * pad)) / (s.length - 1);
        const y = h - pad - (v / top) * (h - 2 * pad - 16);
        return x.toFixed(1) + "," + y.toFixed(1);
      });
      const line = document.createElementNS(SVG_NS, "polyline");
      line.setAttribute("points", pts.join(" "));
      line.setAttribute("fill", "none");
      line.setAttribute("stroke", colors[i]);
      line.setAttribute("stroke-width", "1.5");
      svg.appendChild(line);
    });
    const old = fig.querySelector("svg");
    if (old) old.replaceWith(svg);
    else fig.appendChild(svg);
    fig.dataset.points = String(series[0].length);
    fig.dataset.peak = String(maxV);
    fig.dataset.last = last.join(",");
    return last;
  }

  function renderIntake(intake) {
    if (!intake) return;
    const fig = (id) => $(id);
    const last = renderChart("chart-orders", [intake.orders_per_second || []], ["#0b57d0"], "orders/s");
    fig("chart-orders").querySelector('[data-role="last"]').textContent = text(last[0]);
    const last429 = renderChart("chart-429", [intake.too_many_per_second || []], ["#a3271c"], "429/s");
    fig("chart-429").querySelector('[data-role="last"]').textContent = text(last429[0]);
    const lat = renderChart("chart-latency", [intake.latency_p50_ms || [], intake.latency_p99_ms || []], ["#0b57d0", "#a3271c"], "ms");
    fig("chart-latency").querySelector('[data-role="last-p50"]').textContent = text(lat[0]);
    fig("chart-latency").querySelector('[data-role="last-p99"]').textContent = text(lat[1]);
  }

  function renderAlerts(alerts) {
    $("alerts-open").textContent = text(alerts.open);
    $("alerts-open").dataset.value = String(alerts.open);
    const body = $("alerts-table").tBodies[0];
    body.replaceChildren();
    for (const g of alerts.groups || []) {
      const tr = document.createElement("tr");
      tr.dataset.stage = g.stage;
      cell(tr, g.stage);
      cell(tr, g.warehouse || "(none)");
      cell(tr, g.channel || "(none)");
      cell(tr, g.carrier || "(none)");
      cell(tr, g.count, true).dataset.count = "alerts";
      cell(tr, g.oldest_order);
      cell(tr, g.oldest_since);
      body.appendChild(tr);
    }
    if (!alerts.groups || alerts.groups.length === 0) {
      const tr = document.createElement("tr");
      cell(tr, "no open alerts").colSpan = 7;
      body.appendChild(tr);
    }
  }

  function renderPartitions(node, parts) {
    $("node-id").textContent = text(node);
    const body = $("partitions-table").tBodies[0];
    body.replaceChildren();
    for (const p of parts || []) {
      const tr = document.createElement("tr");
      tr.dataset.partition = String(p.id);
      const th = document.createElement("th");
      th.scope = "row";
      th.textContent = String(p.id);
      tr.appendChild(th);
      cell(tr, p.leader || "(none)").dataset.role = "leader";
      cell(tr, p.state);
      cell(tr, p.term, true);
      cell(tr, p.commit_index, true);
      cell(tr, p.applied_index, true);
      cell(tr, p.lag, true).dataset.role = "lag";
      body.appendChild(tr);
    }
  }

  function seconds(v) {
    return v === undefined || v === null ? "–" : v.toFixed(1) + " s";
  }

  function renderLedger(l) {
    const set = (id, v) => {
      $(id).textContent = v;
    };
    if (!l) {
      for (const id of ["ledger-size", "ledger-checkpoint-size", "ledger-uncheckpointed", "ledger-lag", "ledger-checkpoint-lag", "ledger-anchoring"]) set(id, "no ledger");
      return;
    }
    set("ledger-size", text(l.size));
    set("ledger-checkpoint-size", text(l.checkpoint_size));
    set("ledger-uncheckpointed", text(l.uncheckpointed_leaves));
    set("ledger-lag", seconds(l.lag_seconds));
    $("ledger-lag").dataset.seconds = String(l.lag_seconds);
    set("ledger-checkpoint-lag", seconds(l.checkpoint_lag_seconds));
    let anchoring = l.anchoring && l.anchoring.state ? l.anchoring.state : "off";
    if (l.anchor) anchoring += ", last anchored size " + l.anchor.size + " at " + l.anchor.anchored_at;
    set("ledger-anchoring", anchoring);
  }

  function render(sum) {
    $("orders-total").textContent = text(sum.orders);
    $("orders-total").dataset.value = String(sum.orders);
    for (const dim of ["status", "channel", "warehouse", "region"]) renderCounts(dim, sum.counts[dim]);
    renderIntake(sum.intake);
    renderAlerts(sum.alerts || { open: 0, groups: [] });
    renderPartitions(sum.node, sum.partitions);
    renderLedger(sum.ledger);
    $("summary-at").textContent = sum.at;
    $("summary-at").setAttribute("datetime", sum.at);
    if (sum.errors) {
      setMessage("info", "Not read: " + Object.entries(sum.errors).map(([k, v]) => k + " (" + v + ")").join("; "));
    }
  }

  function addFeed(id, ev) {
    const body = $("feed").tBodies[0];
    const tr = document.createElement("tr");
    tr.dataset.eventId = id;
    tr.dataset.kind = ev.kind || "";
    cell(tr, id, true);
    cell(tr, ev.type);
    cell(tr, ev.order || ev.sku || "");
    cell(tr, ev.status || "");
    cell(tr, ev.at);
    body.insertBefore(tr, body.firstChild);
    while (body.rows.length > FEED_MAX) body.deleteRow(body.rows.length - 1);
  }

  // ---- the review queue ----

  // holdRows are the queue's rows on the page, by order id: {id, hold,
  // tr, riskTr, form, input, error, note, buttons, state}. At most
  // HOLDS_LISTED_MAX listed ones plus those kept while being decided.
  const holdRows = new Map();

  function setHoldsMessage(kind, msg) {
    const el = $("holds-message");
    el.dataset.kind = kind;
    el.textContent = msg;
  }

  // problemOf reads a problem+json answer (or whatever came) into
  // {status, name, title, detail, errors, current}.
  async function problemOf(res) {
    const p = { status: res.status, name: "", title: "", detail: "", errors: [], current: "" };
    try {
      const body = await res.json();
      p.name = body.type ? String(body.type).split("/").pop() : "";
      p.title = body.title || "";
      p.detail = body.detail || "";
      p.errors = Array.isArray(body.errors) ? body.errors.slice(0, 10) : [];
      p.current = body.current_status || "";
    } catch (_) { /* not JSON */ }
    return p;
  }

  function problemText(p) {
    let what = p.detail || p.title || "no detail";
    if (p.errors.length > 1) what += ": " + p.errors.map((e) => e.field + ": " + e.detail).join("; ");
    if (p.current) what += "; the order is " + p.current;
    return what + " (HTTP " + p.status + (p.name ? ", " + p.name : "") + ")";
  }

  // span is a duration of sec seconds as a person says it.
  function span(sec) {
    if (sec < 60) return sec + " s";
    const m = Math.floor(sec / 60);
    if (m < 60) return m + " min";
    const h = Math.floor(m / 60);
    if (h < 48) return h + " h" + (h < 10 && m % 60 ? " " + (m % 60) + " min" : "");
    return Math.floor(h / 24) + " d";
  }

  // relative says when iso is from now: "12 min ago", "in 3 h".
  function relative(iso, now) {
    const t = Date.parse(iso);
    if (!iso || Number.isNaN(t)) return "–";
    const d = Math.round((now - t) / 1000);
    if (d >= 0) return d < 5 ? "just now" : span(d) + " ago";
    return "in " + span(-d);
  }

  function timeCell(tr, role) {
    const td = document.createElement("td");
    td.dataset.role = role;
    const t = document.createElement("time");
    td.appendChild(t);
    tr.appendChild(td);
    return t;
  }

  function setTime(t, iso, now, overdueNote) {
    t.setAttribute("datetime", iso || "");
    t.title = iso || "";
    let s = relative(iso, now);
    if (overdueNote && iso && Date.parse(iso) < now) s += " (overdue)";
    t.textContent = s;
  }

  // signed renders a contribution with its sign, as text: "+0.58".
  function signed(c) {
    return (c > 0 ? "+" : c < 0 ? "-" : "±") + Math.abs(c).toFixed(2);
  }

  function featureValue(v) {
    if (v === undefined || v === null) return "–";
    if (typeof v === "boolean") return v ? "yes" : "no";
    if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toFixed(2);
    return String(v);
  }

  // domId makes an order id safe in an element id.
  function domId(prefix, id) {
    return prefix + "-" + String(id).replace(/[^A-Za-z0-9_-]/g, "_");
  }

  function resetHolds() {
    for (const r of holdRows.values()) removeHoldRow(r);
    holdRows.clear();
    $("holds-counts").tBodies[0].replaceChildren();
    $("holds-table").tBodies[0].replaceChildren();
    $("holds-total").textContent = "–";
    $("holds-total").dataset.value = "";
    setHoldsMessage("none", "");
  }

  function placeholder(body, columns, msg) {
    const tr = document.createElement("tr");
    tr.dataset.role = "placeholder";
    cell(tr, msg).colSpan = columns;
    body.appendChild(tr);
  }

  // holdsUnavailable shows why the queue cannot be read; the rest of the
  // page works on.
  function holdsUnavailable(msg) {
    resetHolds();
    $("review").dataset.state = "unavailable";
    setHoldsMessage("info", msg);
    placeholder($("holds-counts").tBodies[0], 2, "not available");
    placeholder($("holds-table").tBodies[0], HOLD_COLUMNS, "The review queue is not available.");
  }

  async function loadHolds(s) {
    if (s !== session || s.holdsOff) return;
    const gen = ++s.holdsGen; // only the latest read renders
    let res;
    try {
      res = await fetch("/v1/holds?limit=" + HOLDS_LISTED_MAX, { headers: headers(s.token), signal: s.abort.signal, cache: "no-store" });
    } catch (err) {
      if (s === session && err.name !== "AbortError") setHoldsMessage("error", "Cannot read the review queue: " + err.message);
      return;
    }
    if (s !== session || gen !== s.holdsGen) return;
    if (res.status === 503 || res.status === 403) {
      const p = await problemOf(res);
      if (s !== session) return;
      s.holdsOff = true; // neither changes while this token is used
      holdsUnavailable(res.status === 503 ? "The review queue is not available on this node: " + problemText(p)
        : "This token may not read the review queue: it needs role ops. " + problemText(p));
      return;
    }
    if (!res.ok) {
      const p = await problemOf(res);
      if (s === session) setHoldsMessage("error", "The review queue failed: " + problemText(p));
      return;
    }
    let body;
    try {
      body = await res.json();
    } catch (err) {
      setHoldsMessage("error", "The review queue answered something unreadable: " + err.message);
      return;
    }
    if (s !== session || gen !== s.holdsGen) return;
    $("review").dataset.state = "ready";
    if ($("holds-message").dataset.kind === "error") setHoldsMessage("none", "");
    renderHolds(body);
    const at = new Date().toISOString();
    $("holds-at").textContent = at;
    $("holds-at").setAttribute("datetime", at);
  }

  function renderHoldCounts(counts) {
    const body = $("holds-counts").tBodies[0];
    body.replaceChildren();
    const reasons = HOLD_REASONS.concat(Object.keys(counts).filter((k) => !HOLD_REASONS.includes(k)).sort());
    let total = 0;
    for (const reason of reasons) {
      const n = counts[reason] || 0;
      total += n;
      const tr = document.createElement("tr");
      tr.dataset.value = reason;
      const th = document.createElement("th");
      th.scope = "row";
      th.textContent = reason;
      tr.appendChild(th);
      cell(tr, n, true).dataset.count = "hold:" + reason;
      body.appendChild(tr);
    }
    $("holds-total").textContent = String(total);
    $("holds-total").dataset.value = String(total);
  }

  // countDecided takes a decided order off the counts until the next read.
  function countDecided(reason) {
    const td = document.querySelector('[data-count="hold:' + reason + '"]');
    if (td && Number(td.textContent) > 0) td.textContent = String(Number(td.textContent) - 1);
    const total = $("holds-total");
    if (Number(total.dataset.value) > 0) {
      total.dataset.value = String(Number(total.dataset.value) - 1);
      total.textContent = total.dataset.value;
    }
  }

  function renderHolds(body) {
    renderHoldCounts(body.counts || {});
    const now = Date.now();
    const list = (body.holds || []).slice(0, HOLDS_LISTED_MAX);
    const seen = new Set();
    const rows = [];
    for (const h of list) {
      if (seen.has(h.order)) continue;
      seen.add(h.order);
      let r = holdRows.get(h.order);
      if (!r) {
        r = makeHoldRow(h);
        holdRows.set(h.order, r);
      }
      r.hold = h;
      r.tr.classList.remove("gone");
      if (r.state !== "error") r.note.hidden = true;
      setTime(r.heldAt, h.held_at, now, false);
      setTime(r.until, h.until, now, true);
      rows.push(r);
    }
    // A row no longer listed goes, unless the reviewer is deciding it or
    // reading its error; then it stays, marked, until they are done.
    let kept = 0;
    for (const [id, r] of holdRows) {
      if (seen.has(id)) continue;
      if (r.state !== "idle" && kept < HOLDS_LISTED_MAX) {
        kept++;
        r.tr.classList.add("gone");
        r.note.textContent = "No longer in the queue: decided elsewhere, or its hold timed out.";
        r.note.hidden = false;
        rows.push(r);
      } else {
        removeHoldRow(r);
        holdRows.delete(id);
      }
    }
    // Rows are moved only where the order changed: a focused input keeps
    // its focus and its text.
    const tbody = $("holds-table").tBodies[0];
    let at = tbody.firstChild;
    for (const r of rows) {
      for (const tr of [r.tr, r.riskTr]) {
        if (!tr) continue;
        if (tr === at) at = at.nextSibling;
        else tbody.insertBefore(tr, at);
      }
    }
    while (at) {
      const next = at.nextSibling;
      tbody.removeChild(at);
      at = next;
    }
    if (rows.length === 0) placeholder(tbody, HOLD_COLUMNS, "No held orders.");
  }

  function removeHoldRow(r) {
    r.tr.remove();
    if (r.riskTr) r.riskTr.remove();
  }

  function makeHoldRow(h) {
    const r = { id: h.order, hold: h, state: "idle", riskTr: null };
    const tr = document.createElement("tr");
    r.tr = tr;
    tr.dataset.order = h.order;
    tr.dataset.reason = h.reason;
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = h.order;
    tr.appendChild(th);
    cell(tr, h.reason).dataset.role = "reason";

    const findings = document.createElement("td");
    findings.dataset.role = "findings";
    if (h.findings && h.findings.length) {
      const ul = document.createElement("ul");
      ul.className = "findings";
      for (const f of h.findings) {
        const li = document.createElement("li");
        const code = document.createElement("code");
        code.textContent = f.code || "";
        li.appendChild(code);
        if (f.detail) li.appendChild(document.createTextNode(": " + f.detail));
        ul.appendChild(li);
      }
      findings.appendChild(ul);
    } else {
      findings.textContent = "–";
    }
    tr.appendChild(findings);

    const risk = document.createElement("td");
    risk.dataset.role = "risk";
    if (typeof h.risk_score === "number") {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "risk-toggle";
      const shown = h.risk_score.toFixed(2) + (h.risk_verdict ? " " + h.risk_verdict : "");
      b.textContent = shown;
      b.setAttribute("aria-label", shown + ": risk score of order " + h.order + ", show what made it");
      b.setAttribute("aria-expanded", "false");
      b.setAttribute("aria-controls", domId("risk", h.order));
      b.addEventListener("click", () => toggleRisk(r, b));
      risk.appendChild(b);
    } else {
      risk.textContent = "–";
    }
    tr.appendChild(risk);
    cell(tr, h.channel || "(none)").dataset.role = "channel";
    cell(tr, (h.total || "–") + (h.currency ? " " + h.currency : ""), true).dataset.role = "total";
    r.heldAt = timeCell(tr, "held-at");
    r.until = timeCell(tr, "until");
    tr.appendChild(decisionCell(r));
    return r;
  }

  // decisionCell holds Release and Cancel, the inline reason form they
  // open, and the row's error.
  function decisionCell(r) {
    const td = document.createElement("td");
    td.dataset.role = "decision";
    const actions = document.createElement("div");
    actions.className = "decide-actions";
    const buttons = {};
    for (const [decision, label] of [["release", "Release"], ["cancel", "Cancel"]]) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = label;
      b.dataset.decision = decision;
      b.setAttribute("aria-label", label + " order " + r.id);
      b.addEventListener("click", () => openDecision(r, decision));
      actions.appendChild(b);
      buttons[decision] = b;
    }
    td.appendChild(actions);

    const form = document.createElement("form");
    form.className = "decide-form";
    form.hidden = true;
    const inputId = domId("decision-reason", r.id);
    const label = document.createElement("label");
    label.htmlFor = inputId;
    const input = document.createElement("input");
    input.id = inputId;
    input.name = "reason";
    input.type = "text";
    input.required = true;
    input.maxLength = DECISION_REASON_MAX;
    input.autocomplete = "off";
    const confirm = document.createElement("button");
    confirm.type = "submit";
    confirm.dataset.role = "confirm";
    const back = document.createElement("button");
    back.type = "button";
    back.textContent = "Back";
    back.setAttribute("aria-label", "Back: leave order " + r.id + " undecided");
    back.addEventListener("click", () => closeDecision(r));
    form.append(label, input, confirm, back);
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const reason = input.value.trim();
      if (!reason) {
        showRowError(r, "A reason is required: it goes to the order's history and the audit log.");
        input.focus();
        return;
      }
      decide(r, form.dataset.decision, reason);
    });
    td.appendChild(form);

    const error = document.createElement("p");
    error.className = "row-error";
    error.setAttribute("role", "alert");
    error.hidden = true;
    const note = document.createElement("p");
    note.className = "row-note";
    note.hidden = true;
    td.append(error, note);
    Object.assign(r, { form, input, label, confirm, back, error, note, buttons });
    return td;
  }

  function openDecision(r, decision) {
    r.state = "deciding";
    r.form.dataset.decision = decision;
    r.label.textContent = decision === "release" ? "Reason to release" : "Reason to cancel";
    r.confirm.textContent = decision === "release" ? "Confirm release" : "Confirm cancel";
    r.confirm.setAttribute("aria-label", r.confirm.textContent + " of order " + r.id);
    for (const [d, b] of Object.entries(r.buttons)) b.setAttribute("aria-pressed", String(d === decision));
    r.form.hidden = false;
    r.input.focus();
  }

  function closeDecision(r) {
    r.state = "idle";
    r.form.hidden = true;
    r.error.hidden = true;
    r.error.textContent = "";
    r.input.value = "";
    for (const b of Object.values(r.buttons)) b.removeAttribute("aria-pressed");
    r.buttons.release.focus();
    if (r.tr.classList.contains("gone")) {
      removeHoldRow(r);
      holdRows.delete(r.id);
    }
  }

  function showRowError(r, msg) {
    r.state = "error";
    r.error.textContent = msg;
    r.error.hidden = false;
  }

  function setRowSending(r, sending) {
    for (const el of [r.input, r.confirm, r.back, r.buttons.release, r.buttons.cancel]) el.disabled = sending;
    r.tr.dataset.sending = String(sending);
  }

  async function decide(r, decision, reason) {
    const s = session;
    if (!s) {
      showRowError(r, "Not connected: connect with a token first.");
      return;
    }
    r.state = "sending";
    r.error.hidden = true;
    setRowSending(r, true);
    let res;
    try {
      res = await fetch("/v1/holds/" + encodeURIComponent(r.id) + "/decide", {
        method: "POST", headers: headers(s.token, { "Content-Type": "application/json" }),
        body: JSON.stringify({ decision, reason }), signal: s.abort.signal, cache: "no-store" });
    } catch (err) {
      setRowSending(r, false);
      if (err.name !== "AbortError") showRowError(r, "Cannot reach the node: " + err.message);
      return;
    }
    if (!res.ok) {
      const p = await problemOf(res);
      setRowSending(r, false);
      showRowError(r, (decision === "release" ? "Not released: " : "Not cancelled: ") + problemText(p));
      r.input.focus();
      return;
    }
    let status = "";
    try {
      status = (await res.json()).status || "";
    } catch (_) { /* decided all the same */ }
    // The row goes; focus moves to the next row's first button.
    const next = r.tr.nextElementSibling === r.riskTr && r.riskTr ? r.riskTr.nextElementSibling : r.tr.nextElementSibling;
    removeHoldRow(r);
    holdRows.delete(r.id);
    countDecided(r.hold.reason);
    const tbody = $("holds-table").tBodies[0];
    if (tbody.rows.length === 0) placeholder(tbody, HOLD_COLUMNS, "No held orders.");
    setHoldsMessage("info", "Order " + r.id + (decision === "release" ? " released" : " cancelled") + (status ? " (now " + status + ")" : "") + ".");
    const nextButton = next && next.querySelector("button[data-decision]");
    if (nextButton) nextButton.focus();
    if (s === session) loadHolds(s);
  }

  // ---- a risk score's explanation ----

  function toggleRisk(r, button) {
    if (r.riskTr) {
      const open = r.riskTr.hidden;
      r.riskTr.hidden = !open;
      button.setAttribute("aria-expanded", String(open));
      return;
    }
    const tr = document.createElement("tr");
    tr.className = "risk-row";
    tr.id = domId("risk", r.id);
    tr.dataset.riskOf = r.id;
    const td = document.createElement("td");
    td.colSpan = HOLD_COLUMNS;
    td.textContent = "Reading the risk explanation of order " + r.id + "…";
    tr.appendChild(td);
    r.tr.after(tr);
    r.riskTr = tr;
    button.setAttribute("aria-expanded", "true");
    loadRisk(r, td);
  }

  async function loadRisk(r, td) {
    const s = session;
    if (!s) {
      td.textContent = "Not connected.";
      return;
    }
    let res;
    try {
      res = await fetch("/v1/orders/" + encodeURIComponent(r.id) + "/risk", { headers: headers(s.token), signal: s.abort.signal, cache: "no-store" });
    } catch (err) {
      if (err.name !== "AbortError") td.textContent = "Cannot read the risk explanation: " + err.message;
      return;
    }
    if (!res.ok) {
      td.textContent = "No risk explanation: " + problemText(await problemOf(res));
      return;
    }
    try {
      renderContributions(td, await res.json(), r.id);
    } catch (err) {
      td.textContent = "The risk explanation is unreadable: " + err.message;
    }
  }

  // renderContributions draws each feature's contribution as a number
  // with its sign and a bar: right (red) raises the score, left (blue)
  // lowers it.
  function renderContributions(td, ex, id) {
    const all = ex.contributions || [];
    const moving = all.filter((x) => x.contribution !== 0);
    const shown = moving.slice(0, CONTRIBUTIONS_SHOWN_MAX);
    const table = document.createElement("table");
    table.className = "contributions";
    const caption = document.createElement("caption");
    let c = "Risk score of order " + id + ": " + Number(ex.score).toFixed(2) + " (" + (ex.verdict || "no verdict") + ")";
    if (ex.thresholds) c += "; held from " + ex.thresholds.hold + ", refused from " + ex.thresholds.refuse;
    c += ". Each feature's contribution in log-odds from the base " + Number(ex.base || 0).toFixed(2) +
      ", largest first: + raises the score, - lowers it" + (ex.model ? " (model " + ex.model + ")" : "") + ".";
    caption.textContent = c;
    table.appendChild(caption);
    const thead = table.createTHead().insertRow();
    for (const h of ["feature", "value", "contribution", "bar"]) {
      const th = document.createElement("th");
      th.scope = "col";
      th.textContent = h;
      thead.appendChild(th);
    }
    const body = table.createTBody();
    let maxAbs = 0;
    for (const x of shown) maxAbs = Math.max(maxAbs, Math.abs(x.contribution));
    if (maxAbs === 0) maxAbs = 1;
    for (const x of shown) {
      const tr = body.insertRow();
      tr.dataset.feature = x.feature;
      const th = document.createElement("th");
      th.scope = "row";
      th.textContent = x.feature;
      tr.appendChild(th);
      cell(tr, featureValue(x.value));
      const dir = x.contribution > 0 ? "raises" : x.contribution < 0 ? "lowers" : "no effect";
      const ct = cell(tr, signed(x.contribution) + " " + dir, true);
      ct.dataset.role = "contribution";
      if (x.contribution !== 0) ct.classList.add(dir);
      const bar = document.createElement("td");
      bar.appendChild(contributionBar(x.contribution, maxAbs, x.feature + " " + signed(x.contribution) + ", " + dir + " the score"));
      tr.appendChild(bar);
    }
    td.replaceChildren(table);
    const notes = [];
    if (moving.length > shown.length) notes.push((moving.length - shown.length) + " smaller contributions not shown.");
    if (all.length > moving.length) {
      notes.push("No effect (0.00): " + all.filter((x) => x.contribution === 0).map((x) => x.feature).join(", ") + ".");
    }
    for (const n of notes) {
      const p = document.createElement("p");
      p.className = "note";
      p.textContent = n;
      td.appendChild(p);
    }
  }

  function contributionBar(c, maxAbs, label) {
    const w = 160, h = 14, mid = w / 2;
    const svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("viewBox", "0 0 " + w + " " + h);
    svg.setAttribute("width", String(w));
    svg.setAttribute("height", String(h));
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", label);
    const title = document.createElementNS(SVG_NS, "title");
    title.textContent = label;
    svg.appendChild(title);
    const len = (Math.abs(c) / maxAbs) * (mid - 2);
    const rect = document.createElementNS(SVG_NS, "rect");
    rect.setAttribute("x", (c >= 0 ? mid : mid - len).toFixed(1));
    rect.setAttribute("y", "2");
    rect.setAttribute("width", len.toFixed(1));
    rect.setAttribute("height", String(h - 4));
    rect.setAttribute("fill", c >= 0 ? "#a3271c" : "#0b57d0");
    svg.appendChild(rect);
    const axis = document.createElementNS(SVG_NS, "line");
    axis.setAttribute("x1", String(mid));
    axis.setAttribute("x2", String(mid));
    axis.setAttribute("y1", "0");
    axis.setAttribute("y2", String(h));
    axis.setAttribute("stroke", "#1b1b1b");
    svg.appendChild(axis);
    return svg;
  }

  // ---- the stream ----

  // parseBlock reads one SSE event block: its id, data lines and retry.
  function parseBlock(block) {
    const out = { id: null, data: [], retry: null };
    for (const line of block.split(/\r\n|\r|\n/)) {
      if (line === "" || line.startsWith(":")) continue;
      const i = line.indexOf(":");
      const field = i < 0 ? line : line.slice(0, i);
      let value = i < 0 ? "" : line.slice(i + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "id") out.id = value;
      else if (field === "data") out.data.push(value);
      else if (field === "retry" && /^\d+$/.test(value)) out.retry = Number(value);
    }
    return out;
  }

  async function readStream(s, from) {
    const url = s.lastId === null && from !== null && from !== undefined ? "/v1/stream?from=" + from : "/v1/stream";
    const extra = { Accept: "text/event-stream" };
    if (s.lastId !== null) extra["Last-Event-ID"] = s.lastId;
    const res = await fetch(url, { headers: headers(s.token, extra), signal: s.abort.signal, cache: "no-store" });
    if (res.status === 401 || res.status === 403) {
      await authProblem(res);
      return false;
    }
    if (!res.ok || !res.body) throw new Error("HTTP " + res.status);
    setConnection("live", "live");
    s.failures = 0;
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new Error("the stream ended");
      buf += decoder.decode(value, { stream: true });
      for (;;) {
        const m = /\r\n\r\n|\n\n|\r\r/.exec(buf);
        if (!m) break;
        const block = buf.slice(0, m.index);
        buf = buf.slice(m.index + m[0].length);
        const ev = parseBlock(block);
        if (ev.retry !== null) s.retryMs = Math.min(Math.max(ev.retry, RETRY_MIN_MS), RETRY_MAX_MS);
        if (ev.id !== null) s.lastId = ev.id;
        if (ev.data.length === 0) continue;
        let parsed;
        try {
          parsed = JSON.parse(ev.data.join("\n"));
        } catch (_) {
          continue;
        }
        addFeed(ev.id, parsed);
        if (parsed.kind === "order" || parsed.kind === "retention") scheduleRefresh(s);
      }
      if (buf.length > BUFFER_MAX_CHARS) buf = "";
    }
  }

  async function follow(s, from) {
    while (s === session) {
      try {
        if ((await readStream(s, from)) === false) return;
      } catch (err) {
        if (s !== session || err.name === "AbortError") return;
        s.failures++;
        setConnection("reconnecting", "reconnecting (" + err.message + ")");
      }
      const wait = Math.min(s.retryMs * Math.pow(2, Math.max(0, s.failures - 1)), RETRY_MAX_MS);
      await new Promise((resolve) => {
        s.retryTimer = setTimeout(resolve, wait);
      });
    }
  }

  // ---- the session ----

  function stop(state, label) {
    if (!session) return;
    session.abort.abort();
    clearInterval(session.summaryTimer);
    clearTimeout(session.refreshTimer);
    clearTimeout(session.retryTimer);
    session = null;
    setConnection(state, label);
  }

  async function start(token) {
    stop("idle", "not connected");
    const s = { token, abort: new AbortController(), lastId: null, retryMs: RETRY_MIN_MS, failures: 0,
      lastSummary: Date.now(), refreshTimer: null, retryTimer: null, summaryTimer: null, holdsOff: false, holdsGen: 0 };
    session = s;
    resetHolds();
    setConnection("reconnecting", "connecting");
    setMessage("none", "");
    const sum = await loadSummary(s);
    if (s !== session) return;
    loadHolds(s);
    s.summaryTimer = setInterval(() => {
      s.lastSummary = Date.now();
      loadSummary(s);
      loadHolds(s);
    }, SUMMARY_EVERY_MS);
    follow(s, sum ? sum.stream_head : null);
  }

  document.addEventListener("DOMContentLoaded", () => {
    const form = $("token-form");
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const token = $("token").value.trim();
      if (!token) return;
      sessionStorage.setItem(TOKEN_KEY, token);
      $("token").value = "";
      start(token);
    });
    $("token-forget").addEventListener("click", () => {
      sessionStorage.removeItem(TOKEN_KEY);
      stop("idle", "not connected");
      resetHolds();
      setMessage("info", "The token is forgotten.");
    });
    const saved = sessionStorage.getItem(TOKEN_KEY);
    if (saved) start(saved);
  });
})();
