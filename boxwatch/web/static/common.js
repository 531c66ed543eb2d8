// Shared helpers of the boxwatch pages (no build step: plain scripts).
"use strict";
const bw = {
  async json(url) {
    const r = await fetch(url, {credentials: "same-origin"});
    if (!r.ok) throw new Error(url + ": HTTP " + r.status + " " + (await r.text()).slice(0, 200));
    return r.json();
  },
  esc(s) {
    return String(s).replace(/[&<>"']/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
  },
  bytes(n) {
    if (n == null) return "";
    const u = ["B", "KiB", "MiB", "GiB", "TiB"]; let i = 0;
    while (Math.abs(n) >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : Math.round(n)) + " " + u[i];
  },
  duration(sec) {
    if (!(sec > 0)) return "";
    const d = Math.floor(sec / 86400), h = Math.floor(sec % 86400 / 3600), m = Math.floor(sec % 3600 / 60);
    return d ? d + "d " + h + "h" : h ? h + "h " + m + "m" : m + "m " + Math.floor(sec % 60) + "s";
  },
  banners(el, errors) {
    el.innerHTML = (errors || []).map(e => '<div class="banner">' + bw.esc(e) + "</div>").join("");
  },
  // a sparkline of [[t, v], ...] on a canvas; the canvas carries how many points it drew
  spark(canvas, points, max) {
    const w = canvas.width = 120, h = canvas.height = 24, ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, w, h);
    canvas.dataset.n = points.length;
    canvas.dataset.last = points.length ? points[points.length - 1][0] : "";
    if (points.length < 2) return;
    const t0 = points[0][0], t1 = points[points.length - 1][0];
    const top = Math.max(max || 0, ...points.map(p => p[1]), 1e-9);
    ctx.strokeStyle = "#2f6fd6"; ctx.lineWidth = 1.5; ctx.beginPath();
    points.forEach((p, i) => {
      const x = (p[0] - t0) / Math.max(t1 - t0, 1e-9) * (w - 2) + 1, y = h - 1 - p[1] / top * (h - 2);
      i ? ctx.lineTo(x, y) : ctx.moveTo(x, y);
    });
    ctx.stroke();
  },
  hue(name) {
    let x = 0; for (const c of name) x = (x * 31 + c.charCodeAt(0)) >>> 0;
    return "hsl(" + (x % 360) + ",70%,65%)";
  },
};

// ANSI SGR colour codes -> HTML spans; any other escape sequence is dropped.
bw.ANSI = ["#000", "#d33", "#3b3", "#cc3", "#46e", "#c4c", "#3cc", "#ddd"];
bw.ansi = function (text, highlight) {
  let out = "", style = {};
  const parts = text.split(/\x1b\[([0-9;]*)([A-Za-z])/);
  for (let i = 0; i < parts.length; i += 3) {
    let chunk = parts[i].replace(/[\x00-\x08\x0b-\x1f\x7f]/g, "");
    if (chunk) {
      let html = bw.esc(chunk);
      if (highlight) html = bw.mark(chunk, highlight);
      const css = (style.fg ? "color:" + style.fg + ";" : "") + (style.bold ? "font-weight:bold;" : "");
      out += css ? '<span style="' + css + '">' + html + "</span>" : html;
    }
    if (i + 2 < parts.length && parts[i + 2] === "m") {
      for (const c of (parts[i + 1] || "0").split(";").map(Number)) {
        if (c === 0) style = {};
        else if (c === 1) style.bold = true;
        else if (c >= 30 && c <= 37) style.fg = bw.ANSI[c - 30];
        else if (c >= 90 && c <= 97) style.fg = bw.ANSI[c - 90];
        else if (c === 39) delete style.fg;
      }
    }
  }
  return out;
};
bw.mark = function (text, re) {
  let out = "", last = 0;
  re.lastIndex = 0;
  for (const m of text.matchAll(re)) {
    if (!m[0]) break;
    out += bw.esc(text.slice(last, m.index)) + "<mark>" + bw.esc(m[0]) + "</mark>";
    last = m.index + m[0].length;
  }
  return out + bw.esc(text.slice(last));
};
