"use strict";
// History from the store, then the live tail from the cursor the history ended at; the
// browser's EventSource sends Last-Event-ID on reconnect, so the server resumes exactly.
const shown = [];
let source = null, highlight = null;
const linesEl = document.getElementById("lines");

function params() {
  const p = new URLSearchParams();
  for (const c of document.getElementById("containers").value.split(",")) if (c.trim()) p.append("c", c.trim());
  for (const k of ["stream", "grep", "since"]) { const v = document.getElementById(k).value; if (v) p.set(k, v); }
  return p;
}

function ts(ns) {
  return new Date(Number(BigInt(ns) / 1000000n)).toISOString().replace("Z", "") + String(ns).slice(-6) + "Z";
}

function add(entries) {
  const stick = linesEl.scrollTop + linesEl.clientHeight >= linesEl.scrollHeight - 20;
  const html = entries.map(e => {
    shown.push(e);
    return '<div class="line' + (e.s === "stderr" ? " err" : "") + '"><span class="c" style="color:' + bw.hue(e.c) + '">' +
      bw.esc(e.c) + '</span> <span class="t">' + ts(e.t) + "</span> " + bw.ansi(e.m, highlight) + "</div>";
  }).join("");
  linesEl.insertAdjacentHTML("beforeend", html);
  linesEl.dataset.count = shown.length;
  if (stick) linesEl.scrollTop = linesEl.scrollHeight;
}

async function run() {
  if (source) { source.close(); source = null; }
  shown.length = 0; linesEl.innerHTML = "";
  const p = params();
  history.replaceState(null, "", "/logs?" + p.toString());
  if (!p.getAll("c").length) { document.getElementById("status").textContent = "name one or more containers"; return; }
  const grep = p.get("grep");
  try { highlight = grep ? new RegExp(grep, "g") : null; } catch (e) { highlight = null; }
  const d = await bw.json("/api/logs?" + p.toString());
  bw.banners(document.getElementById("errors"), d.errors);
  add(d.entries);
  document.getElementById("status").textContent = d.entries.length + " from history; live…";
  p.set("cursor", d.cursor);
  source = new EventSource("/api/logs/live?" + p.toString());
  source.onmessage = ev => add([JSON.parse(ev.data)]);
  source.onopen = () => { document.getElementById("status").textContent = "live"; };
  source.onerror = () => { document.getElementById("status").textContent = "reconnecting…"; };
}

document.getElementById("download").addEventListener("click", () => {
  const text = shown.map(e => e.c + " " + ts(e.t) + " " + e.s + " " + e.m).join("\n") + "\n";
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([text], {type: "text/plain"}));
  a.download = "boxwatch-logs.txt"; a.click();
});
document.getElementById("query").addEventListener("submit", ev => { ev.preventDefault(); run().catch(e => bw.banners(document.getElementById("errors"), [e.message])); });
const q = new URLSearchParams(location.search);
document.getElementById("containers").value = q.getAll("c").join(",");
for (const k of ["stream", "grep", "since"]) if (q.get(k)) document.getElementById(k).value = q.get(k);
run().catch(e => bw.banners(document.getElementById("errors"), [e.message]));
