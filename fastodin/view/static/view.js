/* fastodin view: the page.  Uses only the data API of spec/view-api.md and uPlot (MIT, shipped
   beside this file).  No build step: plain ES2017.  window.fastodinView exposes the state for
   tests and the curious (plots, the series data each chart holds, the window, pending fetches). */
(function () {
  "use strict";

  const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"];
  const MAX_POINTS = 2000;
  const POLL_MS = 500;
  const HEIGHT = 220;

  const S = {
    channels: [], byName: new Map(), files: [], tags: {},
    span: null,          // [t0, t1] of every plottable channel
    window: null,        // [t0, t1] shown; null = the whole span
    plots: [], nextId: 1, colorNext: 0,
    events: [], eventsTruncated: false,
    generation: -1, ready: false,
    pending: 0, fetchSeq: 0, draws: 0, firstPaint: null, errors: [],
    follow: false, timeAxis: false, wanted: [],
  };

  const $ = (sel) => document.querySelector(sel);

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const k of kids) if (k != null) e.append(k);
    return e;
  }

  async function api(path, params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params || {})) if (v !== null && v !== undefined) q.append(k, String(v));
    const url = path + (q.toString() ? "?" + q : "");
    const r = await fetch(url, { cache: "no-store" });
    const j = await r.json();
    if (!r.ok) throw new Error(j.error || ("HTTP " + r.status));
    return j;
  }

  // ---- numbers ------------------------------------------------------------------------------
  const num = (v) => (v === "inf" ? Infinity : v === "-inf" ? -Infinity : v);
  const drawable = (v) => { const x = num(v); return (x === null || !isFinite(x)) ? null : x; };
  function fmtVal(v) {
    if (v === null || v === undefined) return "NaN";
    if (v === "inf" || v === "-inf") return v;
    return String(v);
  }
  function fmtTime(t) {
    if (typeof t !== "number") return String(t);
    if (S.timeAxis) {
      const d = new Date(t * 1000);
      return d.toISOString().replace("T", " ").replace("Z", "") + " (" + String(t) + ")";
    }
    return String(t) + " s";
  }

  // ---- channels and the tree ------------------------------------------------------------------
  function kindGroup(c) {
    if (c.kind === "odin-set") return "ODIN sets";
    if (c.kind === "odin-event") return "ODIN events";
    if (c.stream) return "Streams";
    if (c.fields.length) return "Channels";
    return "Raw channels";
  }

  function computeSpan() {
    let a = Infinity, b = -Infinity;
    for (const c of S.channels) {
      if (!c.fields.length) continue;
      const s = num(c.start), e = num(c.end);
      if (typeof s === "number" && isFinite(s)) a = Math.min(a, s);
      if (typeof e === "number" && isFinite(e)) b = Math.max(b, e);
    }
    S.span = a <= b ? [a, b] : null;
    S.timeAxis = !!(S.span && S.span[0] > 1e8);
  }

  function renderTree() {
    const tree = $("#tree");
    tree.textContent = "";
    const several = S.files.length > 1;
    const byFile = new Map();
    for (const c of S.channels) {
      if (!byFile.has(c.file)) byFile.set(c.file, []);
      byFile.get(c.file).push(c);
    }
    for (const [file, chans] of byFile) {
      if (several) tree.append(el("h3", { text: file }));
      const groups = new Map();
      for (const c of chans) {
        const g = kindGroup(c);
        if (!groups.has(g)) groups.set(g, []);
        groups.get(g).push(c);
      }
      for (const g of ["Streams", "Channels", "ODIN sets", "ODIN events", "Raw channels"]) {
        if (!groups.has(g)) continue;
        tree.append(el("h3", { text: g }));
        for (const c of groups.get(g)) {
          const label = several ? c.name.slice(file.length + 1) : c.name;
          const sum = el("summary", { title: c.name }, label, el("span", { class: "count", text: c.count.toLocaleString() }));
          const det = el("details", { "data-channel": c.name }, sum);
          if (c.fields.length) {
            for (const f of c.fields) {
              det.append(el("button", {
                class: "field", "data-channel": c.name, "data-field": f.name, title: "plot " + c.name + " " + f.name,
                onclick: (ev) => addSeries(c.name, f.name, ev.shiftKey),
              }, f.name, el("span", { class: "dt", text: f.dtype })));
            }
            if (c.fields.length <= 12 && groups.get(g).length <= 8) det.open = true;
          } else {
            det.append(el("div", { class: "raw", text: c.kind === "odin-event" ? "event markers on every plot" : "raw payloads: listed, not plotted" }));
          }
          tree.append(det);
        }
      }
    }
    const f = S.files.map((x) => x.name).join(", ");
    $("#files").textContent = f;
    document.title = "fastodin view: " + f;
  }

  async function loadChannels() {
    const j = await api("/api/channels");
    S.channels = j.channels;
    S.byName = new Map(j.channels.map((c) => [c.name, c]));
    S.files = j.files;
    S.tags = j.tags;
    computeSpan();
    renderTree();
  }

  // ---- plots --------------------------------------------------------------------------------
  function win() {
    if (S.window) return S.window;
    if (S.span) return S.span[0] < S.span[1] ? S.span : [S.span[0] - 0.5, S.span[0] + 0.5];
    return [0, 1];
  }

  function addSeries(channel, field, intoLast) {
    const c = S.byName.get(channel);
    if (!c || !c.fields.some((f) => f.name === field)) { showError("no field " + field + " in " + channel); return null; }
    const color = COLORS[S.colorNext++ % COLORS.length];
    let plot = intoLast && S.plots.length ? S.plots[S.plots.length - 1] : null;
    if (!plot) plot = newPlot();
    plot.series.push({ channel, field, color, data: null, x: [] });
    rebuild(plot);
    fetchPlot(plot);
    updateUrl();
    return plot;
  }

  function newPlot() {
    $("#hint").hidden = true;
    const id = S.nextId++;
    const names = el("span", { class: "names" });
    const close = el("button", { title: "close this plot", text: "\u00d7" });
    const chart = el("div", { class: "chart" });
    const readout = el("div", { class: "readout" });
    const box = el("div", { class: "plot", "data-plot": String(id) }, el("div", { class: "head" }, names, close), chart, readout);
    $("#plots").append(box);
    const plot = { id, el: box, names, chart, readout, series: [], u: null, error: null };
    close.addEventListener("click", () => {
      if (plot.u) plot.u.destroy();
      box.remove();
      S.plots = S.plots.filter((p) => p !== plot);
      $("#hint").hidden = S.plots.length > 0;
      updateUrl();
    });
    S.plots.push(plot);
    return plot;
  }

  function plotData(plot) {
    const tables = plot.series.map((s) => {
      const d = s.data;
      const x = [], mx = [], mn = [];
      if (d) {
        for (let i = 0; i < d.n.length; i++) {
          const a = num(d.t0[i]), b = num(d.t1[i]);
          if (!isFinite(a) || !isFinite(b)) continue;
          x.push((a + b) / 2);
          mx.push(drawable(d.max[i]));
          mn.push(drawable(d.min[i]));
        }
      }
      s.x = x;
      return [x, mx, mn];
    });
    if (tables.length === 1) return tables[0];
    return uPlot.join(tables);
  }

  function width(plot) { return Math.max(200, plot.chart.clientWidth || plot.el.clientWidth - 2 || 800); }

  function rebuild(plot) {
    plot.names.textContent = plot.series.map((s) => s.channel + " " + s.field).join(", ");
    if (plot.u) plot.u.destroy();
    const series = [{}];
    const bands = [];
    plot.series.forEach((s, k) => {
      series.push({ label: s.channel + " " + s.field + " max", stroke: s.color, width: 1, spanGaps: false, points: { show: false } });
      series.push({ label: s.channel + " " + s.field + " min", stroke: s.color, width: 1, spanGaps: false, points: { show: false } });
      bands.push({ series: [2 * k + 1, 2 * k + 2], fill: s.color + "40" });
    });
    const opts = {
      width: width(plot), height: HEIGHT,
      scales: { x: { time: S.timeAxis, auto: true, range: () => win() } },
      series, bands,
      legend: { show: false },
      cursor: { sync: { key: "fastodin-x" }, drag: { x: true, y: false, setScale: false }, points: { show: false } },
      hooks: {
        setSelect: [(u) => {
          if (u.select.width > 2) {
            const a = u.posToVal(u.select.left, "x"), b = u.posToVal(u.select.left + u.select.width, "x");
            u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
            setWindow(a, b);
          }
        }],
        setCursor: [(u) => readout(plot, u)],
        draw: [(u) => {
          drawEvents(u);
          S.draws++;
          if (S.firstPaint === null && plot.series.some((s) => s.data && s.data.n.length)) S.firstPaint = performance.now();
        }],
      },
      axes: [{}, { size: 70 }],
    };
    plot.u = new uPlot(opts, plotData(plot), plot.chart);
    bindGestures(plot);
  }

  function bindGestures(plot) {
    const over = plot.u.over;
    over.addEventListener("wheel", (e) => {
      e.preventDefault();
      const [a, b] = win();
      const at = plot.u.posToVal(e.offsetX, "x");
      const f = e.deltaY < 0 ? 0.8 : 1.25;
      setWindow(at - (at - a) * f, at + (b - at) * f);
    }, { passive: false });
    over.addEventListener("mousedown", (e) => {
      if (!e.shiftKey && e.button !== 1) return;
      e.stopPropagation(); e.preventDefault();
      const [a, b] = win();
      const x0 = e.clientX, w = over.clientWidth || 1;
      const move = (m) => { const dt = -(m.clientX - x0) / w * (b - a); setWindow(a + dt, b + dt); };
      const up = () => { window.removeEventListener("mousemove", move); window.removeEventListener("mouseup", up); };
      window.addEventListener("mousemove", move);
      window.addEventListener("mouseup", up);
    }, true);
    over.addEventListener("dblclick", (e) => { e.stopPropagation(); resetWindow(); }, true);
  }

  function nearestRun(s, t) {
    const x = s.x;
    if (!x.length || !s.data) return -1;
    let lo = 0, hi = x.length - 1;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (x[mid] < t) lo = mid + 1; else hi = mid; }
    if (lo > 0 && Math.abs(x[lo - 1] - t) <= Math.abs(x[lo] - t)) lo--;
    return lo;
  }

  function runOf(s, k) {
    // s.x skips runs with a non-finite time: map back to the API's run index
    const d = s.data;
    let seen = -1;
    for (let i = 0; i < d.n.length; i++) {
      if (isFinite(num(d.t0[i])) && isFinite(num(d.t1[i]))) seen++;
      if (seen === k) return i;
    }
    return -1;
  }

  function readout(plot, u) {
    const box = plot.readout;
    box.textContent = "";
    if (u.cursor.left == null || u.cursor.left < 0) return;
    const t = u.posToVal(u.cursor.left, "x");
    for (const s of plot.series) {
      const k = nearestRun(s, t);
      if (k < 0) continue;
      const i = runOf(s, k), d = s.data;
      let text;
      if (d.n[i] === 1) text = s.field + " = " + fmtVal(d.max[i]) + " at " + fmtTime(num(d.t0[i]));
      else text = s.field + " " + fmtVal(d.min[i]) + " \u2026 " + fmtVal(d.max[i]) + "  (" + d.n[i] + " records" +
        (d.nan[i] ? ", " + d.nan[i] + " NaN" : "") + ", " + fmtTime(num(d.t0[i])) + " \u2026 " + fmtTime(num(d.t1[i])) + ")";
      box.append(el("span", { class: "item" }, el("span", { class: "sw", style: "background:" + s.color }), text));
    }
    const px = u.cursor.left;
    for (const ev of S.events) {
      const x = u.valToPos(num(ev.t), "x");
      if (Math.abs(x - px) <= 4) box.append(el("span", { class: "item", text: "\u25bc " + ev.channel + ": " + ev.text }));
    }
  }

  function drawEvents(u) {
    if (!S.events.length) return;
    const ctx = u.ctx, top = u.bbox.top, h = u.bbox.height, left = u.bbox.left, w = u.bbox.width;
    ctx.save();
    ctx.strokeStyle = "#e0730088";
    ctx.fillStyle = "#e07300";
    ctx.lineWidth = 1;
    for (const ev of S.events) {
      const t = num(ev.t);
      if (!isFinite(t)) continue;
      const x = Math.round(u.valToPos(t, "x", true)) + 0.5;
      if (x < left || x > left + w) continue;
      ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, top + h); ctx.stroke();
      ctx.beginPath(); ctx.moveTo(x - 4, top); ctx.lineTo(x + 4, top); ctx.lineTo(x, top + 6); ctx.fill();
    }
    ctx.restore();
  }

  // ---- fetching -------------------------------------------------------------------------------
  let fetchTimer = null;
  function scheduleFetch() {
    if (fetchTimer) clearTimeout(fetchTimer);
    fetchTimer = setTimeout(() => { fetchTimer = null; fetchAll(); }, 60);
  }

  function fetchAll() {
    for (const p of S.plots) fetchPlot(p);
    fetchEvents();
  }

  function windowParams() {
    if (!S.window) return {};
    return { start: S.window[0], end: S.window[1] };
  }

  async function fetchPlot(plot) {
    const seq = ++S.fetchSeq;
    plot.seq = seq;
    S.pending++;
    try {
      const pts = Math.min(MAX_POINTS, Math.round(width(plot)));
      const params = plot.series.map((s) => Object.assign({ channel: s.channel, field: s.field, points: pts }, windowParams()));
      const got = await Promise.all(params.map((q) => api("/api/series", q)));
      if (plot.seq !== seq || !plot.u) return;
      got.forEach((d, k) => { plot.series[k].data = d; plot.series[k].params = params[k]; });
      plot.error = null;
      const e = plot.el.querySelector(".error");
      if (e) e.remove();
      plot.u.setData(plotData(plot), true);
    } catch (err) {
      plot.error = String(err.message || err);
      showError(plot.error, plot);
    } finally {
      S.pending--;
    }
  }

  async function fetchEvents() {
    if (!S.channels.some((c) => c.kind === "odin-event")) { S.events = []; return; }
    S.pending++;
    try {
      const j = await api("/api/events", Object.assign({ limit: 2000 }, windowParams()));
      S.events = j.events;
      S.eventsTruncated = j.truncated;
      for (const p of S.plots) if (p.u) p.u.redraw(false, false);
    } catch (err) {
      showError(String(err.message || err));
    } finally {
      S.pending--;
    }
  }

  function showError(msg, plot) {
    S.errors.push(msg);
    if (plot) {
      let e = plot.el.querySelector(".error");
      if (!e) { e = el("div", { class: "error" }); plot.el.insertBefore(e, plot.readout); }
      e.textContent = msg;
    } else {
      $("#status").textContent = msg;
    }
  }

  // ---- the window ---------------------------------------------------------------------------------
  function setWindow(a, b) {
    if (!(b > a) || !isFinite(a) || !isFinite(b)) return;
    S.window = [a, b];
    for (const p of S.plots) if (p.u) p.u.setScale("x", { min: a, max: b });
    showWindow();
    scheduleFetch();
    updateUrl();
  }

  function resetWindow() {
    S.window = null;
    const [a, b] = win();
    for (const p of S.plots) if (p.u) p.u.setScale("x", { min: a, max: b });
    showWindow();
    scheduleFetch();
    updateUrl();
  }

  function showWindow() {
    const [a, b] = win();
    $("#window").textContent = (S.window ? "window " : "whole span ") + fmtNum(a) + " \u2026 " + fmtNum(b) + " s";
  }
  const fmtNum = (x) => (Math.abs(x) >= 1e6 ? x.toFixed(3) : x.toPrecision(8));

  function updateUrl() {
    const q = new URLSearchParams();
    for (const p of S.plots) for (const s of p.series) { q.append("channel", s.channel); q.append("field", s.field); }
    if (S.window) { q.set("start", String(S.window[0])); q.set("end", String(S.window[1])); }
    const qs = q.toString();
    history.replaceState(null, "", qs ? "?" + qs : location.pathname);
  }

  // deep-linked series whose channel (or field) is not in the file yet (a file being recorded):
  // plotted as soon as a look at the file shows them
  function addWanted() {
    const still = [];
    for (const [ch, f] of S.wanted) {
      const c = S.byName.get(ch);
      const field = f !== undefined ? f : (c && c.fields.length ? c.fields[0].name : undefined);
      if (c && field !== undefined && c.fields.some((x) => x.name === field)) addSeries(ch, field, false);
      else still.push([ch, f]);
    }
    S.wanted = still;
    $("#status").textContent = still.length ? "waiting for " + still.map((x) => x[0] + (x[1] ? " " + x[1] : "")).join(", ") : "";
  }

  // ---- live -----------------------------------------------------------------------------------
  async function poll() {
    try {
      const st = await api("/api/status");
      if (!st.ready) {
        const [d, t] = st.progress;
        $("#status").textContent = "summarising" + (t ? " " + Math.floor(100 * d / t) + "%" : "\u2026");
      } else if (st.generation !== S.generation) {
        const first = !S.ready;
        S.ready = true;
        S.generation = st.generation;
        if (!S.wanted.length) $("#status").textContent = "";
        const oldEnd = S.span ? S.span[1] : null;
        await loadChannels();
        if (S.wanted.length) addWanted();
        if (S.follow && S.window && S.span && oldEnd !== null && S.span[1] > oldEnd) {
          const w = S.window[1] - S.window[0];
          S.window = [S.span[1] - w * 0.98, S.span[1] + w * 0.02];
        }
        if (first) await loadInfo();
        for (const p of S.plots) if (p.u) p.u.setScale("x", { min: win()[0], max: win()[1] });
        showWindow();
        fetchAll();
        if (!first && !$("#info").hidden) loadInfo();
      }
    } catch (err) {
      $("#status").textContent = "server unreachable";
    }
    setTimeout(poll, POLL_MS);
  }

  // ---- info panel -------------------------------------------------------------------------------
  function kv(rows) {
    const t = el("table");
    for (const [k, v, cls] of rows) t.append(el("tr", {}, el("th", { text: k }), el("td", { class: cls || "", text: v })));
    return t;
  }

  async function loadInfo() {
    const box = $("#info");
    let j;
    try { j = await api("/api/info"); } catch (err) { box.textContent = String(err.message || err); return; }
    box.textContent = "";
    for (const f of j.files) {
      box.append(el("h3", { text: f.name }));
      const t = f.time || [];
      const rows = [["file", f.path], ["format", (f.format || "") + (f.complete ? ", complete" : ", INCOMPLETE")],
        ["records", String(f.records)], ["time", t.length ? fmtVal(t[0]) + " \u2026 " + fmtVal(t[1]) + " s" : "-"]];
      if (f.compression_ratio) rows.push(["compression", f.compression_ratio.toFixed(2) + "x"]);
      for (const [k, v] of Object.entries(f.tags || {})) rows.push(["tag " + k, JSON.stringify(v)]);
      const od = f.odin;
      if (od) {
        const g = od.sequence_totals || {};
        rows.push(["sequence gaps", String(g.gaps || 0) + " (lost " + (g.lost || 0) + ", duplicates " + (g.duplicates || 0) + ", late " + (g.late || 0) + ")", g.gaps ? "bad" : ""]);
        rows.push(["CRC errors", String(od.crc_errors || 0), od.crc_errors ? "bad" : ""]);
        if (od.source) rows.push(["ODIN counts", od.source]);
      }
      for (const d of f.damage || []) rows.push(["DAMAGE", "offset " + d.offset + ": " + d.reason, "bad"]);
      for (const n of (f.notes || []).concat((f.viewer && f.viewer.notes) || [])) rows.push(["note", n]);
      box.append(kv(rows));
      const ct = el("table", {}, el("tr", {}, el("th", { text: "channel" }), el("th", { text: "records" }), el("th", { text: "rate Hz" })));
      for (const [name, c] of Object.entries(f.channels || {})) {
        ct.append(el("tr", {}, el("td", { text: name }), el("td", { class: "num", text: String(c.count) }),
          el("td", { class: "num", text: c.rate ? c.rate.toFixed(1) : "-" })));
      }
      box.append(el("h3", { text: "channels" }), ct);
      if (od && od.sets) {
        const st = el("table", {}, el("tr", {}, el("th", { text: "set" }), el("th", { text: "received" }), el("th", { text: "gaps" }), el("th", { text: "lost" })));
        for (const [sid, s] of Object.entries(od.sets)) {
          const q = s.sequence || {};
          st.append(el("tr", {}, el("td", { text: sid }), el("td", { class: "num", text: String(q.received || 0) }),
            el("td", { class: "num" + (q.gaps ? " bad" : ""), text: String(q.gaps || 0) }), el("td", { class: "num", text: String(q.lost || 0) })));
        }
        box.append(el("h3", { text: "ODIN sets" }), st);
      }
    }
  }

  // ---- start ----------------------------------------------------------------------------------
  function keys(e) {
    if (e.target && /INPUT|TEXTAREA|SELECT/.test(e.target.tagName)) return;
    const [a, b] = win(), w = b - a;
    if (e.key === "ArrowLeft") setWindow(a - 0.2 * w, b - 0.2 * w);
    else if (e.key === "ArrowRight") setWindow(a + 0.2 * w, b + 0.2 * w);
    else if (e.key === "+" || e.key === "=") setWindow(a + 0.2 * w, b - 0.2 * w);
    else if (e.key === "-") setWindow(a - 0.25 * w, b + 0.25 * w);
    else if (e.key === "0" || e.key === "Home") resetWindow();
    else return;
    e.preventDefault();
  }

  function resized() {
    for (const p of S.plots) if (p.u) p.u.setSize({ width: width(p), height: HEIGHT });
    scheduleFetch();
  }

  async function start() {
    $("#reset").addEventListener("click", resetWindow);
    $("#toggle-info").addEventListener("click", () => {
      const i = $("#info");
      i.hidden = !i.hidden;
      if (!i.hidden) loadInfo();
      resized();
    });
    $("#follow").addEventListener("change", (e) => { S.follow = e.target.checked; });
    document.addEventListener("keydown", keys);
    window.addEventListener("resize", resized);
    try {
      await loadChannels();
    } catch (err) {
      $("#status").textContent = String(err.message || err);
      return;
    }
    const q = new URLSearchParams(location.search);
    const chs = q.getAll("channel"), fs = q.getAll("field");
    const a = parseFloat(q.get("start")), b = parseFloat(q.get("end"));
    if (isFinite(a) && isFinite(b) && b > a) S.window = [a, b];
    else if (isFinite(a) && S.span) S.window = [a, S.span[1]];
    else if (isFinite(b) && S.span) S.window = [S.span[0], b];
    showWindow();
    for (let i = 0; i < chs.length; i++) S.wanted.push([chs[i], fs[i]]);
    addWanted();
    fetchEvents();
    poll();
  }

  const busy = () => S.pending + (fetchTimer ? 1 : 0);
  Object.assign(S, { addSeries, setWindow, resetWindow, win, fetchAll, busy });
  window.fastodinView = S;
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
