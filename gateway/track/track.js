// The tracking page: loads the order's timeline, then follows its stream
// (EventSource reconnects by itself and resumes with Last-Event-ID).
"use strict";
(function () {
  var FORWARD = ["created", "paid", "picked", "packed", "shipped", "in_transit", "out_for_delivery", "delivered"];
  var LABELS = {
    created: "Order placed", pending_payment: "Awaiting payment", on_hold: "On hold",
    paid: "Paid", picked: "Picked", packed: "Packed", shipped: "Shipped",
    in_transit: "In transit", out_for_delivery: "Out for delivery", delivered: "Delivered",
    return_requested: "Return requested", returned: "Returned", refunded: "Refunded",
    cancelled: "Cancelled", expired: "Expired (not paid in time)", merged: "Merged into another order"
  };
  // Statuses after which no forward step is to come.
  var CLOSED = { delivered: 1, return_requested: 1, returned: 1, refunded: 1, cancelled: 1, expired: 1, merged: 1 };
  var BAD = { cancelled: 1, expired: 1, merged: 1 };

  var root = document.getElementById("track");
  if (!root) { return; }
  var order = root.getAttribute("data-order");
  var token = new URLSearchParams(window.location.search).get("t") || "";
  var base = "/track/" + encodeURIComponent(order);
  var q = "?t=" + encodeURIComponent(token);
  var state = { status: "", promised: "", carrier: "", tracking: "", events: {} };

  function $(id) { return document.getElementById(id); }
  function label(t) { return LABELS[t] || t.replace(/_/g, " "); }
  function when(iso) {
    var d = new Date(iso);
    if (isNaN(d.getTime())) { return iso; }
    return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  }
  function day(iso) {
    var d = new Date(iso);
    if (isNaN(d.getTime())) { return iso; }
    return d.toLocaleDateString(undefined, { weekday: "short", year: "numeric", month: "short", day: "numeric" });
  }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined) { e.textContent = text; }
    return e;
  }

  function add(e) {
    if (!e || !e.type) { return; }
    state.events[e.seq] = e;
    if (e.carrier) { state.carrier = e.carrier; }
    if (e.tracking_number) { state.tracking = e.tracking_number; }
    if (e.promised_by) { state.promised = e.promised_by; }
  }

  function render() {
    var seqs = Object.keys(state.events).map(Number).sort(function (a, b) { return a - b; });
    var events = seqs.map(function (s) { return state.events[s]; });
    if (events.length > 0) { state.status = events[events.length - 1].status || state.status; }
    var status = $("status");
    status.textContent = label(state.status);
    status.className = BAD[state.status] ? "bad" : (state.status === "delivered" ? "done" : "");
    root.setAttribute("data-status", state.status);
    $("promised").textContent = state.promised ? day(state.promised) : "not given";
    $("carrier-row").hidden = !state.carrier;
    $("carrier").textContent = state.carrier;
    $("tracking-row").hidden = !state.tracking;
    $("tracking-number").textContent = state.tracking;

    var ol = $("timeline");
    var items = [];
    var reached = -1;
    events.forEach(function (e, i) {
      var li = el("li", BAD[e.type] ? "bad" : (i === events.length - 1 ? "current" : "done"));
      li.setAttribute("data-type", e.type);
      if (i === events.length - 1) { li.setAttribute("aria-current", "step"); }
      li.appendChild(el("span", "step", label(e.type)));
      var t = el("time", "", when(e.at));
      t.setAttribute("datetime", e.at);
      li.appendChild(t);
      if (e.type === "shipped" && (e.carrier || e.tracking_number)) {
        li.appendChild(el("span", "note", [e.carrier, e.tracking_number].filter(Boolean).join(" · ")));
      }
      items.push(li);
      reached = Math.max(reached, FORWARD.indexOf(e.type));
    });
    if (!CLOSED[state.status]) {
      FORWARD.slice(reached + 1).forEach(function (typ) {
        var li = el("li", "todo");
        li.setAttribute("data-type", typ);
        li.appendChild(el("span", "step", label(typ)));
        li.appendChild(el("span", "note", "to come"));
        items.push(li);
      });
    }
    ol.replaceChildren.apply(ol, items);
  }

  function live(text, off) {
    var p = $("live");
    p.textContent = text;
    p.className = off ? "live off" : "live";
  }

  function follow(from) {
    var es = new EventSource(base + "/stream" + q + "&from=" + from);
    es.onopen = function () { live("Live: this page updates by itself.", false); };
    es.onmessage = function (m) {
      try { add(JSON.parse(m.data)); } catch (err) { return; }
      render();
    };
    es.onerror = function () {
      if (es.readyState === EventSource.CLOSED) {
        live("Updates stopped (the link may have expired). Reload the page to try again.", true);
      } else {
        live("Reconnecting…", true);
      }
    };
  }

  $("copy").addEventListener("click", function () {
    var done = function () { live("Tracking number copied.", false); };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(state.tracking).then(done, function () {});
    }
  });

  fetch(base + "/timeline" + q, { headers: { Accept: "application/json" }, cache: "no-store" })
    .then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) { throw new Error(body.detail || ("error " + r.status)); }
        return body;
      });
    })
    .then(function (v) {
      state.status = v.status;
      state.promised = v.promised_by || "";
      state.carrier = v.carrier || "";
      state.tracking = v.tracking_number || "";
      (v.events || []).forEach(add);
      $("expires").textContent = when(v.expires_at);
      render();
      if (v.live) { follow(v.stream_from); } else { live("Live updates are off on this server; reload for news.", true); }
    })
    .catch(function (err) {
      $("status").textContent = "unavailable";
      live(String(err.message || err), true);
    });
})();
