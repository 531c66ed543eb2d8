"use strict";
const SPAN = 300;  // seconds of sparkline
let rows = new Map(), spark = {}, loadErrors = [];

function matches(r, f) {
  if (!f) return true;
  const labels = Object.entries(r.labels || {}).map(([k, v]) => k + "=" + v).join(" ");
  return (r.name + " " + r.image + " " + r.host + " " + labels).toLowerCase().includes(f.toLowerCase());
}

function render() {
  const f = document.getElementById("filter").value, body = document.querySelector("#containers tbody");
  const shown = [...rows.values()].filter(r => matches(r, f));
  document.getElementById("count").textContent = shown.length + " of " + rows.size + " containers";
  body.innerHTML = shown.map(r => {
    const up = r.state === "running" && r.started_at ? bw.duration(Date.now() / 1000 - r.started_at) : "";
    return '<tr data-id="' + bw.esc(r.id) + '"><td><a href="/c/' + encodeURIComponent(r.id) + '">' + bw.esc(r.name) +
      "</a></td><td>" + bw.esc(r.host || "") + '</td><td class="state-' + bw.esc(r.state) + '">' + bw.esc(r.state) +
      "</td><td>" + bw.esc(r.image) + '</td><td class="uptime">' + up + '</td><td class="num">' + (r.restarts ?? "") +
      '</td><td><canvas class="spark cpu"></canvas></td><td class="num cpuv"></td>' +
      '<td><canvas class="spark mem"></canvas></td><td class="num memv"></td>' +
      '<td><a href="/logs?c=' + encodeURIComponent(r.local ? r.name : r.name + "@" + r.host) + '">logs</a></td></tr>';
  }).join("");
  for (const tr of body.rows) draw(tr);
}

function draw(tr) {
  const id = tr.dataset.id, s = spark[id] || {}, r = rows.get(id);
  const cpu = s.cpu || [], mem = s.mem || [];
  bw.spark(tr.querySelector("canvas.cpu"), cpu);
  bw.spark(tr.querySelector("canvas.mem"), mem, r.limit || 0);
  tr.querySelector(".cpuv").textContent = cpu.length ? cpu[cpu.length - 1][1].toFixed(1) + " %" : "";
  tr.querySelector(".memv").textContent = mem.length ? bw.bytes(mem[mem.length - 1][1]) +
    (r.limit ? " / " + bw.bytes(r.limit) : "") : "";
}

async function load() {
  try {
    const d = await bw.json("/api/overview");
    rows = new Map(d.containers.map(r => [r.id, r]));
    for (const [id, s] of Object.entries(d.spark)) spark[id] = {cpu: s.cpu || [], mem: s.mem || []};
    loadErrors = d.errors;
    bw.banners(document.getElementById("errors"), loadErrors);
    document.getElementById("alerts").innerHTML = d.alerts.map(a => '<div class="alert"><b>' + bw.esc(a.name) +
      "</b> " + bw.esc(a.container) + " since " + bw.esc(a.since) + " " + bw.esc(a.summary) +
      " <small>(" + bw.esc(a.source) + ")</small></div>").join("");
    render();
  } catch (e) {
    bw.banners(document.getElementById("errors"), ["boxwatch web unreachable: " + e.message]);
  }
}

function live() {
  const es = new EventSource("/api/overview/live");
  es.onmessage = ev => {
    const d = JSON.parse(ev.data);
    const now = d.error ? [...new Set([...loadErrors, d.error])] : loadErrors;
    bw.banners(document.getElementById("errors"), now);
    if (d.error) return;
    for (const [id, [cpu, mem, limit]] of Object.entries(d.v)) {
      const s = spark[id] = spark[id] || {cpu: [], mem: []};
      s.cpu.push([d.t, cpu]); s.mem.push([d.t, mem]);
      for (const k of ["cpu", "mem"]) while (s[k].length && s[k][0][0] < d.t - SPAN) s[k].shift();
      if (rows.has(id)) rows.get(id).limit = limit;
      else if (!load.pending) { load.pending = true; load().finally(() => { load.pending = false; }); }
    }
    for (const tr of document.querySelectorAll("#containers tbody tr")) draw(tr);
  };
}

document.getElementById("filter").addEventListener("input", render);
load().then(live);
setInterval(load, 30000);
