"use strict";
const KEY = decodeURIComponent(location.pathname.split("/").pop());
const LIVE_SPAN = 300;
const GROUPS = {
  cpu: [["cpu", "CPU %", "#2f6fd6"], ["throttled", "throttled %", "#d33"]],
  mem: [["mem", "working set", "#2f6fd6"], ["peak", "peak", "#e69a1a"], ["limit", "limit", "#d33"]],
  io: [["read", "read", "#2f6fd6"], ["write", "write", "#d33"]],
  net: [["rx", "rx", "#2f6fd6"], ["tx", "tx", "#3b3"]],
  pids: [["pids", "pids", "#2f6fd6"]],
};
const BYTES = new Set(["mem", "io", "net"]);
let data = null, events = [], source = null, mode = "live";
window.bwEvents = () => events;

// events pushed by the server while the page is open (health flips, restarts, kills)
function addEvents(fresh) {
  const seen = new Set(events.map(e => e.t.toFixed(3) + " " + e.action));
  for (const e of fresh) if (!seen.has(e.t.toFixed(3) + " " + e.action)) events.push(e);
  events.sort((a, b) => a.t - b.t);
  if (charts.cpu) redraw();
}
const charts = {};
window.bwCharts = charts;

function eventsPlugin() {
  return {hooks: {draw: u => {
    const ctx = u.ctx, {top, height} = u.bbox;
    ctx.save(); ctx.font = "10px sans-serif";
    for (const e of events) {
      const x = u.valToPos(e.t, "x", true);
      if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
      ctx.strokeStyle = ctx.fillStyle = /oom_kill|die|unhealthy/.test(e.action) ? "#d33" : "#17803d";
      ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, top + height); ctx.stroke();
      ctx.fillText(e.action, x + 2, top + 10);
    }
    ctx.restore();
  }}};
}

function build() {
  for (const [name, lines] of Object.entries(GROUPS)) {
    const el = document.getElementById("chart-" + name);
    el.innerHTML = "";
    const fmt = BYTES.has(name) ? (u, v) => bw.bytes(v) : (u, v) => v == null ? "" : (+v).toFixed(1);
    charts[name] = new uPlot({
      width: el.clientWidth || 460, height: 200, plugins: [eventsPlugin()],
      series: [{}, ...lines.map(([k, label, colour]) => ({label, stroke: colour, value: fmt, spanGaps: true}))],
      axes: [{}, {values: (u, vals) => vals.map(v => fmt(u, v)), size: 70}],
    }, columns(name), el);
  }
}

function columns(name) {
  return [data.t, ...GROUPS[name].map(([k]) => data[k])];
}

function redraw() {
  for (const name of Object.keys(GROUPS)) {
    charts[name].setData(columns(name));
    document.getElementById("chart-" + name).dataset.points = data.t.length;
  }
  document.getElementById("events").innerHTML = events.map(e => '<li class="' + (/oom_kill|die|unhealthy/.test(e.action) ? "bad" : "") + '">' +
    new Date(e.t * 1000).toISOString() + " " + bw.esc(e.action) + (e.exit_code != null ? " (exit " + e.exit_code + ")" : "") + "</li>").join("");
}

function push(p) {
  data.t.push(p.t);
  for (const lines of Object.values(GROUPS)) for (const [k] of lines) data[k].push(p[k]);
  while (data.t.length && data.t[0] < p.t - LIVE_SPAN) for (const k of Object.keys(data)) data[k].shift();
  redraw();
}

async function show(range) {
  mode = range;
  if (source) { source.close(); source = null; }
  document.querySelectorAll(".ranges button").forEach(b => b.classList.toggle("on", b.dataset.range === range));
  const url = "/api/containers/" + encodeURIComponent(KEY) + (range === "live" ? "/history" : "/range?range=" + range);
  const d = await bw.json(url);
  bw.banners(document.getElementById("errors"), d.errors);
  events = d.events || [];
  data = {t: d.t || []};
  for (const lines of Object.values(GROUPS)) for (const [k] of lines) data[k] = d[k] || [];
  // another host's container: no console here (box exec runs on its own host)
  document.getElementById("console-box").classList.toggle("remote", !!d.remote);
  if (d.container && d.container.name) {
    document.getElementById("title").textContent = d.container.name + (d.remote ? " on " + d.container.host : "") +
      " (" + d.container.image + ")";
    document.getElementById("logs-link").href = "/logs?c=" + encodeURIComponent(d.container.name +
      (d.remote ? "@" + d.container.host : ""));
  }
  if (!charts.cpu) build();
  redraw();
  if (range === "live") {
    source = new EventSource("/api/containers/" + encodeURIComponent(KEY) + "/live");
    source.onmessage = ev => { document.getElementById("status").textContent = ""; push(JSON.parse(ev.data)); };
    source.addEventListener("events", ev => addEvents(JSON.parse(ev.data)));
    source.addEventListener("down", ev => { document.getElementById("status").textContent = "live: " + JSON.parse(ev.data); });
  }
}

document.querySelectorAll(".ranges button").forEach(b => b.addEventListener("click", () => show(b.dataset.range)));
show("live").catch(e => bw.banners(document.getElementById("errors"), [e.message]));
