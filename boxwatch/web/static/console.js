"use strict";
// The exec console: xterm.js over a WebSocket to `box exec -it`. The first message is the
// pane's size, so the shell draws for it from its first prompt; every resize follows.
(async () => {
  const cfg = await bw.json("/api/config");
  if (!cfg.exec) return;
  const box = document.getElementById("console-box");
  box.hidden = false;
  document.getElementById("console-open").addEventListener("click", () => {
    const el = document.getElementById("term");
    el.hidden = false;
    const term = new Terminal({convertEol: false, fontSize: 13});
    const fit = new FitAddon.FitAddon();
    term.loadAddon(fit);
    term.open(el);
    fit.fit();
    window.bwTerm = term;
    const proto = location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(proto + location.host + "/ws/exec/" + encodeURIComponent(KEY));
    ws.binaryType = "arraybuffer";
    const send = m => { if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(m)); };
    ws.onopen = () => { send({type: "resize", cols: term.cols, rows: term.rows}); term.focus(); };
    ws.onmessage = ev => term.write(new Uint8Array(ev.data));
    ws.onclose = () => term.write("\r\n[console closed]\r\n");
    term.onData(d => send({type: "input", data: d}));
    term.onResize(({cols, rows}) => send({type: "resize", cols, rows}));
    window.addEventListener("resize", () => fit.fit());
    window.addEventListener("pagehide", () => ws.close());
    document.getElementById("console-open").disabled = true;
  });
})();
