// The ops page: reads GET /v1/ops/summary (on start, every few seconds,
// and at most every 2 s while order events arrive) and GET /v1/stream
// with the API token the user gives, kept in sessionStorage. The stream
// is read through fetch (an EventSource cannot send Authorization) and
// parsed here as Server-Sent Events; after an error it reconnects with
// Last-Event-ID. Counts are the summary's, exact: an order event only
// triggers a re-fetch, it is not applied to them here. Charts are inline
// SVG drawn here. Nothing is loaded from elsewhere.
"use strict";

(() => {
  const TOKEN_KEY = "ordergrid.ops.token";
  const SUMMARY_EVERY_MS = 5000; // the periodic re-fetch
  const REFRESH_AFTER_EVENT_MS = 500; // at most two re-fetches a second on events: a move shows within a second
  const FEED_MAX = 50;
  const RETRY_MIN_MS = 1000;
  const RETRY_MAX_MS = 15000;
  const BUFFER_MAX_CHARS = 4 << 20; // an event block larger than this is dropped

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
      lastSummary: Date.now(), refreshTimer: null, retryTimer: null, summaryTimer: null };
    session = s;
    setConnection("reconnecting", "connecting");
    setMessage("none", "");
    const sum = await loadSummary(s);
    if (s !== session) return;
    s.summaryTimer = setInterval(() => {
      s.lastSummary = Date.now();
      loadSummary(s);
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
      setMessage("info", "The token is forgotten.");
    });
    const saved = sessionStorage.getItem(TOKEN_KEY);
    if (saved) start(saved);
  });
})();
