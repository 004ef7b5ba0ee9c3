// A small accessibility check, run in the page (chromedp.Evaluate). It
// defines window.__a11y with:
//   names()      interactive elements without an accessible name
//   contrast(m)  text under m:1 against its effective background
//   tabbables()  marks the elements Tab should reach (data-a11y-idx) and
//                records their unfocused outline/box-shadow; returns them
//   focused()    the focused element's index and whether its focus is
//                visible (an outline or box shadow it had not unfocused)
// Each finding is a short string naming the element.
(function () {
  "use strict";
  var INTERACTIVE = "a[href], button, input:not([type=hidden]), select, textarea, [role=button], [role=link], [tabindex]:not([tabindex='-1'])";

  function describe(el) {
    var s = el.tagName.toLowerCase();
    if (el.id) { s += "#" + el.id; }
    if (el.className && typeof el.className === "string") { s += "." + el.className.trim().split(/\s+/).join("."); }
    var text = (el.textContent || "").trim().replace(/\s+/g, " ");
    if (text) { s += " \"" + text.slice(0, 40) + "\""; }
    return s;
  }

  function visible(el) {
    if (!el.isConnected) { return false; }
    var st = getComputedStyle(el);
    if (st.display === "none" || st.visibility === "hidden" || st.visibility === "collapse") { return false; }
    var r = el.getBoundingClientRect();
    if (r.width <= 1 || r.height <= 1) { return false; }
    for (var p = el; p; p = p.parentElement) {
      if (p.hidden || getComputedStyle(p).display === "none") { return false; }
    }
    return true;
  }

  function textOf(id) {
    var e = document.getElementById(id);
    return e ? (e.textContent || "").trim() : "";
  }

  function accessibleName(el) {
    var n = (el.getAttribute("aria-label") || "").trim();
    if (n) { return n; }
    var lb = el.getAttribute("aria-labelledby");
    if (lb) {
      n = lb.split(/\s+/).map(textOf).join(" ").trim();
      if (n) { return n; }
    }
    if (el.labels && el.labels.length) {
      n = Array.prototype.map.call(el.labels, function (l) { return (l.textContent || "").trim(); }).join(" ").trim();
      if (n) { return n; }
    }
    var tag = el.tagName.toLowerCase();
    if (tag === "input") {
      var type = (el.getAttribute("type") || "text").toLowerCase();
      if ((type === "submit" || type === "button" || type === "reset") && el.value) { return el.value; }
      if (type === "image" && el.alt) { return el.alt; }
    }
    if (tag !== "input" && tag !== "select" && tag !== "textarea") {
      n = (el.textContent || "").trim();
      if (n) { return n; }
      var imgs = el.querySelectorAll("img[alt]");
      for (var i = 0; i < imgs.length; i++) { if (imgs[i].alt.trim()) { return imgs[i].alt.trim(); } }
    }
    return (el.getAttribute("title") || "").trim();
  }

  function names() {
    var out = [];
    document.querySelectorAll(INTERACTIVE).forEach(function (el) {
      if (visible(el) && !accessibleName(el)) { out.push(describe(el) + ": no accessible name"); }
    });
    return out;
  }

  function parseColor(c) {
    var m = c.match(/rgba?\(([^)]+)\)/);
    if (!m) { return null; }
    var p = m[1].split(/[\s,\/]+/).filter(Boolean).map(parseFloat);
    return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
  }
  function blend(top, bottom) {
    var a = top.a + bottom.a * (1 - top.a);
    if (a === 0) { return { r: 255, g: 255, b: 255, a: 0 }; }
    return {
      r: (top.r * top.a + bottom.r * bottom.a * (1 - top.a)) / a,
      g: (top.g * top.a + bottom.g * bottom.a * (1 - top.a)) / a,
      b: (top.b * top.a + bottom.b * bottom.a * (1 - top.a)) / a,
      a: a
    };
  }
  // The effective background: the element's and its ancestors'
  // background colours composed, over white (the canvas).
  function background(el) {
    var layers = [];
    for (var p = el; p; p = p.parentElement) {
      var c = parseColor(getComputedStyle(p).backgroundColor);
      if (c && c.a > 0) {
        layers.push(c);
        if (c.a >= 1) { break; }
      }
    }
    var bg = { r: 255, g: 255, b: 255, a: 1 };
    for (var i = layers.length - 1; i >= 0; i--) { bg = blend(layers[i], bg); }
    return bg;
  }
  function luminance(c) {
    function ch(v) { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); }
    return 0.2126 * ch(c.r) + 0.7152 * ch(c.g) + 0.0722 * ch(c.b);
  }
  function ratio(a, b) {
    var la = luminance(a), lb = luminance(b);
    return (Math.max(la, lb) + 0.05) / (Math.min(la, lb) + 0.05);
  }

  function contrast(min) {
    var out = [];
    var all = document.body ? document.body.querySelectorAll("*") : [];
    for (var i = 0; i < all.length; i++) {
      var el = all[i];
      if (/^(SCRIPT|STYLE|NOSCRIPT|TEMPLATE)$/.test(el.tagName)) { continue; }
      var own = false;
      for (var n = el.firstChild; n; n = n.nextSibling) {
        if (n.nodeType === 3 && n.textContent.trim()) { own = true; break; }
      }
      if (!own || !visible(el)) { continue; }
      var st = getComputedStyle(el);
      var fg = parseColor(st.color);
      if (!fg) { continue; }
      var bg = background(el);
      var r = ratio(blend(fg, bg), bg);
      if (r < min) {
        out.push(describe(el) + ": contrast " + r.toFixed(2) + ":1 (" + st.color + " on " + "rgb(" + [bg.r, bg.g, bg.b].map(Math.round).join(", ") + ")), want " + min + ":1");
      }
    }
    return out;
  }

  function focusStyle(el) {
    var st = getComputedStyle(el);
    return { outline: st.outlineStyle !== "none" && parseFloat(st.outlineWidth) > 0 ? st.outlineStyle + " " + st.outlineWidth + " " + st.outlineColor : "",
      shadow: st.boxShadow === "none" ? "" : st.boxShadow, border: st.borderColor + " " + st.borderWidth, bg: st.backgroundColor };
  }

  var unfocused = [];
  function tabbables() {
    unfocused = [];
    var out = [];
    document.querySelectorAll(INTERACTIVE).forEach(function (el) {
      if (!visible(el) || el.disabled || el.tabIndex < 0) { return; }
      el.setAttribute("data-a11y-idx", String(out.length));
      unfocused.push(focusStyle(el));
      out.push(describe(el));
    });
    if (document.activeElement && document.activeElement.blur) { document.activeElement.blur(); }
    window.getSelection && window.getSelection().removeAllRanges();
    return out;
  }

  function focused() {
    var el = document.activeElement;
    if (!el || el === document.body) { return { idx: -1, visible: false, what: "nothing" }; }
    var idx = el.hasAttribute("data-a11y-idx") ? parseInt(el.getAttribute("data-a11y-idx"), 10) : -1;
    var now = focusStyle(el), before = unfocused[idx] || { outline: "", shadow: "", border: "", bg: "" };
    var vis = (now.outline !== "" && now.outline !== before.outline) || (now.shadow !== "" && now.shadow !== before.shadow) ||
      now.border !== before.border || now.bg !== before.bg;
    return { idx: idx, visible: vis, what: describe(el) };
  }

  window.__a11y = { names: names, contrast: contrast, tabbables: tabbables, focused: focused };
  return true;
})();
