// geosensord view: the live map. Plain JS, no dependencies, no network beyond the viewer.
//
// Map: web mercator on a <canvas> (world outline, optional tiles, S2 cells, tracks, the
// drawn region and its covering, the range outline), markers in an <svg> overlay so each
// one is an element (class "mk <layer>", data-id, data-kind, data-src).
// Data: /api/stream (Server-Sent Events): "subscription", "backfill" batches, "ready",
// then "events" batches. Drawing a circle or rectangle reconnects with ?region=….
"use strict";

const MAX_LAT = 85.0511;
const EARTH_KM = 6371.0088;
const SVG_NS = "http://www.w3.org/2000/svg";
const AIRCRAFT_LIVE_MS = 60e3;
const AIRCRAFT_EXPIRE_MS = 15 * 60e3;
const TRACK_POINTS = 40;
const SONDE_TRACK_POINTS = 4000;

// ---------------------------------------------------------------- projection & view

function mercX(lon) { return (lon + 180) / 360; }
function mercY(lat) {
  const p = Math.max(-MAX_LAT, Math.min(MAX_LAT, lat)) * Math.PI / 180;
  return (1 - Math.log(Math.tan(p) + 1 / Math.cos(p)) / Math.PI) / 2;
}
function invMercX(x) { return x * 360 - 180; }
function invMercY(y) { return Math.atan(Math.sinh(Math.PI * (1 - 2 * y))) * 180 / Math.PI; }
function wrapLon(lon) { return ((lon + 540) % 360) - 180; }

function distanceKm(lat1, lon1, lat2, lon2) {
  const r = Math.PI / 180, p1 = lat1 * r, p2 = lat2 * r;
  const h = Math.sin((p2 - p1) / 2) ** 2 + Math.cos(p1) * Math.cos(p2) * Math.sin((lon2 - lon1) * r / 2) ** 2;
  return 2 * EARTH_KM * Math.asin(Math.min(1, Math.sqrt(h)));
}
function destination(lat, lon, bearingDeg, distKm) {
  const r = Math.PI / 180, d = distKm / EARTH_KM, p1 = lat * r, b = bearingDeg * r;
  const sp2 = Math.sin(p1) * Math.cos(d) + Math.cos(p1) * Math.sin(d) * Math.cos(b);
  const p2 = Math.asin(Math.max(-1, Math.min(1, sp2)));
  const l2 = lon * r + Math.atan2(Math.sin(b) * Math.sin(d) * Math.cos(p1), Math.cos(d) - Math.sin(p1) * sp2);
  return [p2 / r, wrapLon(l2 / r)];
}

const view = { cx: 0.5, cy: 0.5, z: 1024, w: 800, h: 600 }; // z: world width in px

function toScreen(lat, lon, k) {
  // k: which copy of the world (…-1, 0, 1…); undefined = the copy nearest the view centre
  let mx = mercX(lon);
  if (k === undefined) k = Math.round(view.cx - mx);
  return [(mx + k - view.cx) * view.z + view.w / 2, (mercY(lat) - view.cy) * view.z + view.h / 2];
}
function nearestCopy(lon) { return Math.round(view.cx - mercX(lon)); }
function fromScreen(x, y) {
  const mx = view.cx + (x - view.w / 2) / view.z, my = view.cy + (y - view.h / 2) / view.z;
  return [invMercY(Math.max(0, Math.min(1, my))), wrapLon(invMercX(mx))];
}
function setView(lat, lon, z) {
  view.cx = mercX(lon); view.cy = mercY(lat);
  view.z = Math.max(256, Math.min(2 ** 24, z));
  requestDraw();
}
function fitBounds(points) {
  if (!points.length) return;
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (const [lat, lon] of points) {
    const x = mercX(lon), y = mercY(lat);
    x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
  }
  const span = Math.max(x1 - x0, y1 - y0, 0.002);
  const z = 0.85 * Math.min(view.w, view.h) / span;
  view.cx = (x0 + x1) / 2; view.cy = (y0 + y1) / 2;
  view.z = Math.max(256, Math.min(2 ** 24, z));
  requestDraw();
}

// ---------------------------------------------------------------- state

const state = {
  config: null,
  world: [],                 // rings of [lat, lon]
  aircraft: new Map(),       // icao -> {lat, lon, alt, track, callsign, t, track_pts, ev}
  idents: new Map(),         // icao -> callsign (identity before position)
  quakes: new Map(),         // eventid -> event
  sondes: new Map(),         // serial -> {ev, pts: [[lat, lon, alt]]}
  sensors: new Map(),        // src -> event
  others: new Map(),         // src|kind -> event
  cellCounts: new Map(),     // token -> count
  cellVerts: new Map(),      // token -> [[lat, lon] x4]
  pendingCells: new Set(),
  subscription: null,        // from the server
  region: null,              // {type: circle|rect, …}
  drawMode: null,
  drawing: null,
  layers: { aircraft: true, sonde: true, quake: true, sensor: true, other: true, cells: true, range: true },
  shownBySrc: new Map(),
  range: {},
  tiles: new Map(),
  source: null,
  ready: false,
  received: 0,
};

// ---------------------------------------------------------------- world outline (TopoJSON)

function decodeTopology(topo, objectName) {
  const [sx, sy] = topo.transform.scale, [tx, ty] = topo.transform.translate;
  const arcs = topo.arcs.map((arc) => {
    let x = 0, y = 0;
    return arc.map(([dx, dy]) => { x += dx; y += dy; return [y * sy + ty, x * sx + tx]; });
  });
  const ring = (indexes) => {
    const out = [];
    for (const i of indexes) {
      const a = i >= 0 ? arcs[i] : arcs[~i].slice().reverse();
      out.push(...(out.length ? a.slice(1) : a));
    }
    return out;
  };
  const rings = [];
  for (const g of topo.objects[objectName].geometries) {
    const polys = g.type === "Polygon" ? [g.arcs] : g.type === "MultiPolygon" ? g.arcs : [];
    for (const poly of polys) for (const r of poly) rings.push(ring(r));
  }
  return rings;
}

// ---------------------------------------------------------------- drawing: canvas

const canvas = document.getElementById("map");
const ctx = canvas.getContext("2d");
const svg = document.getElementById("markers");
let drawQueued = false;

function requestDraw() {
  if (drawQueued) return;
  drawQueued = true;
  requestAnimationFrame(() => { drawQueued = false; draw(); });
}

function resize() {
  const r = canvas.parentElement.getBoundingClientRect();
  const dpr = window.devicePixelRatio || 1;
  view.w = r.width; view.h = r.height;
  canvas.width = Math.round(r.width * dpr); canvas.height = Math.round(r.height * dpr);
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  svg.setAttribute("viewBox", `0 0 ${r.width} ${r.height}`);
  requestDraw();
}

function worldCopies() {
  const lo = Math.floor(view.cx - view.w / 2 / view.z), hi = Math.floor(view.cx + view.w / 2 / view.z);
  const out = [];
  for (let k = Math.max(lo, -2); k <= Math.min(hi, 2); k++) out.push(k);
  return out;
}

function pathRing(pts, k) {
  // pts: [[lat, lon]…]; longitudes unwrapped from the first so a ring crossing ±180 stays whole
  let prev = pts[0][1], off = 0;
  for (let i = 0; i < pts.length; i++) {
    let lon = pts[i][1];
    if (i) { const d = lon - prev; if (d > 180) off -= 360; else if (d < -180) off += 360; prev = lon; }
    const [x, y] = toScreen(pts[i][0], lon + off, k);
    if (i) ctx.lineTo(x, y); else ctx.moveTo(x, y);
  }
}

function drawTiles() {
  const url = state.config && state.config.tiles_url;
  if (!url) return;
  const zl = Math.max(0, Math.min(19, Math.round(Math.log2(view.z / 256))));
  const n = 2 ** zl, size = view.z / n;
  const x0 = Math.floor((view.cx - view.w / 2 / view.z) * n), x1 = Math.floor((view.cx + view.w / 2 / view.z) * n);
  const y0 = Math.max(0, Math.floor((view.cy - view.h / 2 / view.z) * n)), y1 = Math.min(n - 1, Math.floor((view.cy + view.h / 2 / view.z) * n));
  for (let ty = y0; ty <= y1; ty++) for (let tx = x0; tx <= x1; tx++) {
    const wx = ((tx % n) + n) % n, key = `${zl}/${wx}/${ty}`;
    let img = state.tiles.get(key);
    if (!img) {
      img = new Image();
      img.onload = requestDraw;
      img.src = url.replace("{z}", zl).replace("{x}", wx).replace("{y}", ty);
      state.tiles.set(key, img);
    }
    if (img.complete && img.naturalWidth) {
      ctx.drawImage(img, (tx / n - view.cx) * view.z + view.w / 2, (ty / n - view.cy) * view.z + view.h / 2, size + 0.5, size + 0.5);
    }
  }
}

function altColor(altM) {
  // 0 m green → 12 km blue → 35 km magenta
  const f = Math.max(0, Math.min(1, (altM || 0) / 35000));
  return `hsl(${Math.round(120 + 180 * f)}, 80%, 42%)`;
}

function draw() {
  ctx.clearRect(0, 0, view.w, view.h);
  ctx.fillStyle = "#a9c7de";
  ctx.fillRect(0, 0, view.w, view.h);
  drawTiles();
  const copies = worldCopies();
  if (!(state.config && state.config.tiles_url)) {
    ctx.beginPath();
    for (const k of copies) for (const r of state.world) pathRing(r, k);
    ctx.fillStyle = "#f1efe6"; ctx.fill("evenodd");
    ctx.strokeStyle = "#8e9a8a"; ctx.lineWidth = 0.7; ctx.stroke();
  }
  if (state.layers.cells) drawCells(copies);
  drawCovering(copies);
  if (state.layers.range) drawRangeOnMap();
  drawTracks();
  drawRegion();
  placeMarkers();
}

function drawCells(copies) {
  let max = 1;
  for (const c of state.cellCounts.values()) max = Math.max(max, c);
  for (const [token, count] of state.cellCounts) {
    const v = state.cellVerts.get(token);
    if (!v) continue;
    const f = Math.log(1 + count) / Math.log(1 + max);
    ctx.beginPath();
    for (const k of copies) { pathRing(v, k); ctx.closePath(); }
    ctx.fillStyle = `rgba(255, ${Math.round(190 - 150 * f)}, 0, ${0.15 + 0.45 * f})`;
    ctx.fill();
    ctx.strokeStyle = "rgba(160, 60, 0, 0.7)"; ctx.lineWidth = 0.8; ctx.stroke();
  }
}

function drawCovering(copies) {
  const sub = state.subscription;
  if (!sub || !sub.vertices) return;
  ctx.beginPath();
  for (const token of sub.cells) {
    const v = sub.vertices[token];
    if (v) for (const k of copies) { pathRing(v, k); ctx.closePath(); }
  }
  ctx.setLineDash([3, 3]); ctx.strokeStyle = "rgba(40, 40, 160, 0.6)"; ctx.lineWidth = 1; ctx.stroke();
  ctx.setLineDash([]);
}

function regionRing(region) {
  if (region.type === "circle") {
    const pts = [];
    for (let b = 0; b <= 360; b += 4) pts.push(destination(region.lat, region.lon, b, region.radius_km));
    return pts;
  }
  const east = region.east < region.west ? region.east + 360 : region.east, pts = [];
  const steps = 32;
  for (let i = 0; i <= steps; i++) pts.push([region.north, region.west + (east - region.west) * i / steps]);
  for (let i = 0; i <= steps; i++) pts.push([region.south, east - (east - region.west) * i / steps]);
  pts.push([region.north, region.west]);
  return pts;
}

function drawRegion() {
  const r = state.drawing || state.region;
  if (!r) return;
  const ring = regionRing(r);
  ctx.beginPath(); pathRing(ring, nearestCopy(ring[0][1]));
  ctx.fillStyle = "rgba(30, 30, 200, 0.06)"; ctx.fill();
  ctx.strokeStyle = "#2222cc"; ctx.lineWidth = 2; ctx.stroke();
}

function drawRangeOnMap() {
  for (const [, outline] of Object.entries(state.range)) {
    for (const [key, style] of [["all_time", "rgba(90,90,90,0.9)"], ["last_24h", "rgba(20,86,216,0.9)"]]) {
      const pts = outline[key].filter((p) => p).map((p) => [p[1], p[2]]);
      if (pts.length < 2) continue;
      ctx.beginPath(); pathRing([...pts, pts[0]], nearestCopy(outline.receiver[1]));
      ctx.strokeStyle = style; ctx.lineWidth = 1.5; ctx.stroke();
    }
    const [x, y] = toScreen(outline.receiver[0], outline.receiver[1]);
    ctx.fillStyle = "#000"; ctx.fillRect(x - 3, y - 3, 6, 6);
  }
}

function drawTracks() {
  if (state.layers.aircraft) {
    ctx.lineWidth = 1.5; ctx.strokeStyle = "rgba(20, 86, 216, 0.8)";
    for (const a of state.aircraft.values()) {
      if (a.pts.length < 2) continue;
      ctx.beginPath(); pathRing(a.pts, nearestCopy(a.lon)); ctx.stroke();
    }
  }
  if (state.layers.sonde) {
    ctx.lineWidth = 2.5;
    for (const s of state.sondes.values()) {
      const k = nearestCopy(s.ev.lon);
      for (let i = 1; i < s.pts.length; i++) {
        const [x0, y0] = toScreen(s.pts[i - 1][0], s.pts[i - 1][1], k);
        const [x1, y1] = toScreen(s.pts[i][0], s.pts[i][1], k);
        ctx.beginPath(); ctx.moveTo(x0, y0); ctx.lineTo(x1, y1);
        ctx.strokeStyle = altColor(s.pts[i][2]); ctx.stroke();
      }
    }
  }
}

// ---------------------------------------------------------------- drawing: svg markers

const markerEls = new Map(); // layer|key -> <g>

function svgEl(tag, attrs, parent) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  if (parent) parent.appendChild(el);
  return el;
}

function markerFor(layer, key, build) {
  const id = `${layer}|${key}`;
  let g = markerEls.get(id);
  if (!g) {
    g = svgEl("g", { class: `mk ${layer}` }, svg);
    build(g);
    markerEls.set(id, g);
  }
  return g;
}
function dropMarker(layer, key) {
  const id = `${layer}|${key}`, g = markerEls.get(id);
  if (g) { g.remove(); markerEls.delete(id); }
}
function clearMarkers() {
  for (const g of markerEls.values()) g.remove();
  markerEls.clear();
}
function setLabel(g, text) {
  const t = g.querySelector("text");
  if (!t) return;
  const lines = text.split("\n");
  while (t.childNodes.length > lines.length) t.lastChild.remove();
  lines.forEach((line, i) => {
    let span = t.childNodes[i];
    if (!span) span = svgEl("tspan", { x: t.getAttribute("x"), dy: i ? "1.1em" : "0" }, t);
    span.textContent = line;
  });
}
function setTitle(g, text) {
  let t = g.querySelector("title");
  if (!t) t = svgEl("title", {}, g);
  t.textContent = text;
}
function fmtAlt(m) { return m === null || m === undefined ? "" : `${Math.round(m)} m`; }
function fmtAge(ms) {
  const s = Math.abs(ms) / 1000;
  if (s < 120) return `${Math.round(s)} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} d`;
}

function placeMarkers() {
  const now = Date.now();
  for (const [id, g] of markerEls) {
    const layer = id.slice(0, id.indexOf("|"));
    const visible = state.layers[layer];
    const lat = +g.dataset.lat, lon = +g.dataset.lon;
    const [x, y] = toScreen(lat, lon);
    const on = visible && x > -60 && x < view.w + 60 && y > -60 && y < view.h + 60;
    g.style.display = on ? "" : "none";
    if (!on) continue;
    let transform = `translate(${x.toFixed(1)},${y.toFixed(1)})`;
    g.setAttribute("transform", transform);
    if (layer === "aircraft") {
      const body = g.firstChild;
      body.setAttribute("transform", `rotate(${+g.dataset.track || 0})`);
      g.classList.toggle("stale", now - +g.dataset.t > AIRCRAFT_LIVE_MS);
    } else if (layer === "quake") {
      const ageH = Math.max(0, now - +g.dataset.t) / 3.6e6;
      g.style.opacity = Math.max(0.3, 1 - Math.log10(1 + ageH) / Math.log10(1 + 24 * 7)).toFixed(2);
    }
  }
}

// ---------------------------------------------------------------- ingesting events

function upsertAircraft(ev) {
  const d = ev.data || {}, icao = d.icao || ev.id.split(":")[1];
  let a = state.aircraft.get(icao);
  if (!a) { a = { pts: [] }; state.aircraft.set(icao, a); }
  if (a.t && ev.t < a.t) return; // an older fix arriving late: keep the newer one
  Object.assign(a, { lat: ev.lat, lon: ev.lon, alt: ev.alt, t: ev.t, ev });
  if (d.track_deg !== null && d.track_deg !== undefined) a.track = d.track_deg;
  if (d.callsign) a.callsign = d.callsign;
  else if (state.idents.get(icao)) a.callsign = state.idents.get(icao);
  a.pts.push([ev.lat, ev.lon]);
  if (a.pts.length > TRACK_POINTS) a.pts.shift();
  renderAircraft(icao, a);
}

function renderAircraft(icao, a) {
  const d = a.ev.data || {};
  const g = markerFor("aircraft", icao, (g) => {
    svgEl("path", { d: "M0,-9 L6,7 L0,3 L-6,7 Z" }, g);
    svgEl("text", { x: 9, y: -2 }, g);
  });
  Object.assign(g.dataset, { id: icao, event: a.ev.id, kind: a.ev.kind, src: a.ev.src, lat: a.lat, lon: a.lon, t: a.t, track: a.track || 0 });
  setLabel(g, `${a.callsign || icao}\n${fmtAlt(a.alt)}`);
  setTitle(g, `${icao} ${a.callsign || ""}\nalt ${fmtAlt(a.alt)}\nspeed ${d.speed_mps ?? "?"} m/s, track ${a.track ?? "?"}°\nsquawk ${d.squawk ?? "?"}`);
}

function upsertQuake(ev) {
  const d = ev.data || {}, key = d.eventid || ev.id;
  const old = state.quakes.get(key);
  if (old && (old.data.updated || 0) > (d.updated || 0)) return;
  state.quakes.set(key, ev);
  const mag = typeof d.mag === "number" ? d.mag : 0;
  const g = markerFor("quake", key, (g) => svgEl("circle", { r: 4 }, g));
  g.firstChild.setAttribute("r", (3 + 2.6 * Math.max(0, mag)).toFixed(1));
  Object.assign(g.dataset, { id: ev.id, key, kind: ev.kind, src: ev.src, lat: ev.lat, lon: ev.lon, t: ev.t, mag });
  setTitle(g, `${d.title || key}\n${new Date(ev.t).toISOString()} (${fmtAge(Date.now() - ev.t)} ago)\ndepth ${d.depth_km ?? "?"} km`);
}

function upsertSonde(ev) {
  const d = ev.data || {}, key = d.serial || ev.id.split(":")[1];
  let s = state.sondes.get(key);
  if (!s) { s = { pts: [] }; state.sondes.set(key, s); }
  s.ev = ev;
  s.pts.push([ev.lat, ev.lon, ev.alt]);
  if (s.pts.length > SONDE_TRACK_POINTS) s.pts.shift();
  const g = markerFor("sonde", key, (g) => { svgEl("circle", { r: 5 }, g); svgEl("text", { x: 8, y: -2 }, g); });
  Object.assign(g.dataset, { id: key, event: ev.id, kind: ev.kind, src: ev.src, lat: ev.lat, lon: ev.lon, t: ev.t });
  const climb = typeof d.vel_v_mps === "number" ? ` ${d.vel_v_mps > 0 ? "+" : ""}${d.vel_v_mps.toFixed(1)} m/s` : "";
  setLabel(g, `${key}\n${fmtAlt(ev.alt)}${climb}`);
  setTitle(g, `${key} frame ${d.frame ?? "?"}\nalt ${fmtAlt(ev.alt)}\nheading ${d.heading_deg ?? "?"}°, ${d.vel_h_mps ?? "?"} m/s`);
}

function upsertSensor(ev) {
  const d = ev.data || {}, key = ev.src;
  state.sensors.set(key, ev);
  const g = markerFor("sensor", key, (g) => { svgEl("rect", { x: -5, y: -5, width: 10, height: 10 }, g); svgEl("text", { x: 8, y: -2 }, g); });
  Object.assign(g.dataset, { id: key, event: ev.id, kind: ev.kind, src: ev.src, lat: ev.lat, lon: ev.lon, t: ev.t });
  const values = d.values && typeof d.values === "object" ? d.values : d;
  const units = (d.units && typeof d.units === "object") ? d.units : {};
  const shown = Object.entries(values).filter(([, v]) => typeof v === "number").slice(0, 4)
    .map(([k, v]) => `${k} ${+v.toFixed(2)}${units[k] ? " " + units[k] : ""}`);
  setLabel(g, [key, ...shown].join("\n"));
  setTitle(g, JSON.stringify(d, null, 1));
}

function upsertOther(ev) {
  const key = `${ev.src}:${ev.kind}`;
  state.others.set(key, ev);
  const g = markerFor("other", key, (g) => svgEl("circle", { r: 3 }, g));
  Object.assign(g.dataset, { id: ev.id, kind: ev.kind, src: ev.src, lat: ev.lat, lon: ev.lon, t: ev.t });
  setTitle(g, `${ev.kind} ${ev.id}`);
}

function ingest(ev) {
  state.received++;
  state.shownBySrc.set(ev.src, (state.shownBySrc.get(ev.src) || 0) + 1);
  if (ev.cell) {
    state.cellCounts.set(ev.cell, (state.cellCounts.get(ev.cell) || 0) + 1);
    if (!state.cellVerts.has(ev.cell)) state.pendingCells.add(ev.cell);
  }
  switch (ev.kind) {
    case "aircraft.position": upsertAircraft(ev); break;
    case "aircraft.identity": {
      const d = ev.data || {};
      if (d.icao && d.callsign) {
        state.idents.set(d.icao, d.callsign);
        const a = state.aircraft.get(d.icao);
        if (a) { a.callsign = d.callsign; renderAircraft(d.icao, a); }
      }
      break;
    }
    case "aircraft.velocity": case "aircraft.raw": break;
    case "quake": upsertQuake(ev); break;
    case "quake.deleted": {
      const key = (ev.data || {}).eventid;
      if (key) { state.quakes.delete(key); dropMarker("quake", key); }
      break;
    }
    case "sonde.telemetry": upsertSonde(ev); break;
    case "sensor.reading": upsertSensor(ev); break;
    default: upsertOther(ev);
  }
}

function expireAircraft() {
  const now = Date.now();
  for (const [icao, a] of state.aircraft) {
    if (now - a.t > AIRCRAFT_EXPIRE_MS) { state.aircraft.delete(icao); dropMarker("aircraft", icao); }
  }
}

let cellFetch = null;
async function fetchCells() {
  if (cellFetch || !state.pendingCells.size) return;
  const tokens = [...state.pendingCells].slice(0, 2000);
  tokens.forEach((t) => state.pendingCells.delete(t));
  cellFetch = fetch(`/api/cells?tokens=${tokens.join(",")}`).then((r) => r.json()).then((verts) => {
    for (const [t, v] of Object.entries(verts)) state.cellVerts.set(t, v);
    requestDraw();
  }).catch(() => tokens.forEach((t) => state.pendingCells.add(t))).finally(() => { cellFetch = null; });
}

// ---------------------------------------------------------------- the event stream

function resetData() {
  for (const m of [state.aircraft, state.quakes, state.sondes, state.sensors, state.others, state.cellCounts, state.shownBySrc]) m.clear();
  state.received = 0;
  clearMarkers();
}

function regionParam(r) {
  if (!r) return "";
  const f = (v) => (+v).toFixed(5);
  return r.type === "circle" ? `circle:${f(r.lat)},${f(r.lon)},${f(r.radius_km)}` : `rect:${f(r.south)},${f(r.west)},${f(r.north)},${f(r.east)}`;
}

function setStatus(text, st) {
  const el = document.getElementById("status");
  el.textContent = text; el.dataset.state = st;
}

function connect() {
  if (state.source) state.source.close();
  resetData();
  state.ready = false;
  state.subscription = null;
  const params = new URLSearchParams();
  if (state.region) params.set("region", regionParam(state.region));
  const src = new EventSource(`/api/stream?${params}`);
  state.source = src;
  setStatus("connecting…", "connecting");
  const batch = (e) => { if (src !== state.source) return; for (const ev of JSON.parse(e.data)) ingest(ev); fetchCells(); requestDraw(); };
  src.addEventListener("subscription", (e) => {
    if (src !== state.source) return;
    // A reconnect after a dropped connection resumes from Last-Event-ID: keep what is shown.
    state.subscription = JSON.parse(e.data);
    const sub = state.subscription;
    document.getElementById("region-label").textContent = sub.region
      ? `region: ${sub.via === "cells" ? sub.cells.length + " cells" : "global stream, filtered"}` : "";
    requestDraw();
  });
  src.addEventListener("backfill", batch);
  src.addEventListener("events", batch);
  src.addEventListener("ready", (e) => {
    if (src !== state.source) return;
    state.ready = true;
    setStatus(`live · backfilled ${JSON.parse(e.data).backfilled} events`, "live");
    refreshStats(); refreshRange();
  });
  src.addEventListener("problem", (e) => setStatus(`redis: ${JSON.parse(e.data).error}`, "error"));
  src.onerror = () => { if (src === state.source) setStatus("disconnected, retrying…", "error"); };
  src.onopen = () => { if (src === state.source && state.ready) setStatus("live", "live"); };
}

function subscribe(region) {
  state.region = region;
  connect();
}

// ---------------------------------------------------------------- interaction

const wrap = document.getElementById("mapwrap");
let drag = null;

function localXY(e) { const r = wrap.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; }

function setDrawMode(mode) {
  state.drawMode = state.drawMode === mode ? null : mode;
  document.getElementById("btn-circle").classList.toggle("active", state.drawMode === "circle");
  document.getElementById("btn-rect").classList.toggle("active", state.drawMode === "rect");
  wrap.classList.toggle("drawing", !!state.drawMode);
}

function shapeFrom(mode, a, b) {
  if (mode === "circle") return { type: "circle", lat: a[0], lon: a[1], radius_km: Math.max(0.1, distanceKm(a[0], a[1], b[0], b[1])) };
  // west is the left corner on screen, so a box drawn across ±180 runs eastwards from it
  const [left, right] = a[2] <= b[2] ? [a, b] : [b, a];
  return { type: "rect", south: Math.min(a[0], b[0]), north: Math.max(a[0], b[0]), west: left[1], east: right[1] };
}

wrap.addEventListener("mousedown", (e) => {
  if (e.target.closest("#toolbar")) return;
  const [x, y] = localXY(e);
  if (state.drawMode) {
    const [lat, lon] = fromScreen(x, y);
    drag = { mode: state.drawMode, start: [lat, lon, x] };
  } else {
    drag = { mode: "pan", x, y, cx: view.cx, cy: view.cy };
  }
  e.preventDefault();
});
window.addEventListener("mousemove", (e) => {
  if (!drag) return;
  const [x, y] = localXY(e);
  if (drag.mode === "pan") {
    view.cx = drag.cx - (x - drag.x) / view.z;
    view.cy = Math.max(0, Math.min(1, drag.cy - (y - drag.y) / view.z));
  } else {
    const [lat, lon] = fromScreen(x, y);
    state.drawing = shapeFrom(drag.mode, drag.start, [lat, lon, x]);
  }
  requestDraw();
});
window.addEventListener("mouseup", (e) => {
  if (!drag) return;
  const d = drag; drag = null;
  if (d.mode === "pan") { writeHash(); return; }
  const [x, y] = localXY(e);
  const [lat, lon] = fromScreen(x, y);
  const shape = shapeFrom(d.mode, d.start, [lat, lon, x]);
  state.drawing = null;
  setDrawMode(d.mode); // toggles the mode off
  if (Math.abs(x - d.start[2]) < 2 && d.mode === "rect") { requestDraw(); return; }
  subscribe(shape);
});
wrap.addEventListener("wheel", (e) => {
  e.preventDefault();
  const [x, y] = localXY(e);
  const before = [view.cx + (x - view.w / 2) / view.z, view.cy + (y - view.h / 2) / view.z];
  view.z = Math.max(256, Math.min(2 ** 24, view.z * Math.exp(-e.deltaY * 0.0015)));
  view.cx = before[0] - (x - view.w / 2) / view.z;
  view.cy = Math.max(0, Math.min(1, before[1] - (y - view.h / 2) / view.z));
  requestDraw(); writeHash();
}, { passive: false });

function writeHash() {
  const [lat, lon] = [invMercY(view.cy), wrapLon(invMercX(view.cx))];
  history.replaceState(null, "", `#${lat.toFixed(4)},${lon.toFixed(4)},${Math.log2(view.z / 256).toFixed(2)}`);
}
function readHash() {
  const m = location.hash.slice(1).split(",").map(Number);
  if (m.length === 3 && m.every(Number.isFinite)) { setView(m[0], m[1], 256 * 2 ** m[2]); return true; }
  return false;
}

document.getElementById("btn-circle").onclick = () => setDrawMode("circle");
document.getElementById("btn-rect").onclick = () => setDrawMode("rect");
document.getElementById("btn-clear").onclick = () => subscribe(null);
document.getElementById("btn-fit").onclick = () => {
  const pts = [];
  for (const g of markerEls.values()) pts.push([+g.dataset.lat, +g.dataset.lon]);
  fitBounds(pts);
};
for (const box of document.querySelectorAll("#layers input")) {
  box.onchange = () => { state.layers[box.dataset.layer] = box.checked; requestDraw(); };
}

// ---------------------------------------------------------------- side panel: stats

function sparkline(values) {
  const max = Math.max(1, ...values), w = 60, h = 16, bw = w / values.length;
  const bars = values.map((v, i) => v ? `<rect x="${(i * bw).toFixed(1)}" y="${(h - h * v / max).toFixed(1)}" width="${bw.toFixed(2)}" height="${(h * v / max).toFixed(1)}" fill="#1456d8"/>` : "").join("");
  return `<svg width="${w}" height="${h}" viewBox="0 0 ${w} ${h}">${bars}</svg>`;
}
function esc(s) { return String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]); }
function num(v, digits = 1) { return v === null || v === undefined ? "–" : (+v).toFixed(digits); }

async function refreshStats() {
  let s;
  try { s = await (await fetch("/api/stats")).json(); } catch { return; }
  const rows = Object.entries(s.sources).map(([name, st]) =>
    `<tr data-src="${esc(name)}"><td title="${esc(Object.entries(st.kinds).map(([k, n]) => `${k}: ${n}`).join("\n"))}">${esc(name)}</td><td>${st.total}</td><td>${num(st.rate_1m)}</td><td>${num(st.rate_15m)}</td><td>${sparkline(st.history_per_min)}</td></tr>`);
  document.querySelector("#sources tbody").innerHTML = rows.join("");
  const shown = [...state.shownBySrc].map(([k, n]) => `${esc(k)} ${n}`).join(", ");
  document.getElementById("shown").textContent = `on the map: ${state.received} events${shown ? " (" + shown + ")" : ""}`;
  const metrics = s.metrics ? s.metrics.by_source : {};
  const rx = Object.entries(s.receivers).map(([name, r]) => {
    const m = metrics[name] || {};
    const extra = s.metrics ? `<br>messages ${m.adsb_messages_total ?? "–"}, aircraft (daemon) ${m.adsb_aircraft ?? "–"}, input ${m.adsb_input_up ? "up" : "down"}` : "";
    return `<div class="rx" data-src="${esc(name)}"><b>${esc(name)}</b>aircraft live ${r.aircraft_live} / seen ${r.aircraft_seen}, positions ${r.positions}<br>` +
      `RSSI ${num(r.rssi_db_mean)} dBFS, range 24 h ${num(r.max_range_24h_km)} km, all ${num(r.max_range_all_km)} km${extra}</div>`;
  });
  const note = s.metrics_error ? `<div class="rx">metrics: ${esc(s.metrics_error)}</div>` : (s.metrics ? "" : `<div class="rx">(derived from the streams; the daemon's /metrics is not configured)</div>`);
  document.getElementById("receivers").innerHTML = (rx.join("") || "<div>no ADS-B receiver configured</div>") + note;
  fillSelect("timemap-src", Object.keys(s.sources), loadTimeMap);
}

function fillSelect(id, names, onChange) {
  const sel = document.getElementById(id);
  const have = [...sel.options].map((o) => o.value);
  if (names.join() === have.join()) return;
  const cur = sel.value;
  sel.innerHTML = names.map((n) => `<option>${esc(n)}</option>`).join("");
  if (names.includes(cur)) sel.value = cur;
  sel.onchange = onChange;
  if (!cur && names.length) onChange();
}

// ---------------------------------------------------------------- range plot

async function refreshRange() {
  try { state.range = await (await fetch("/api/range")).json(); } catch { return; }
  fillSelect("range-src", Object.keys(state.range), drawRangePlot);
  drawRangePlot();
  requestDraw();
}

function drawRangePlot() {
  const c = document.getElementById("range-plot"), g = c.getContext("2d");
  const W = c.width, H = c.height, cx = W / 2, cy = H / 2, R = W / 2 - 24;
  g.clearRect(0, 0, W, H);
  const outline = state.range[document.getElementById("range-src").value];
  g.strokeStyle = "#ccd"; g.fillStyle = "#556"; g.font = "10px system-ui"; g.lineWidth = 1;
  if (!outline) { g.fillText("no ADS-B receiver", 10, 20); c.dataset.sectors = "0"; return; }
  const maxKm = Math.max(outline.max_all_km, outline.max_24h_km, 1);
  const step = [1, 2, 5, 10, 25, 50, 100, 200, 500].find((s) => maxKm / s <= 5) || 1000;
  const scale = R / (Math.ceil(maxKm / step) * step);
  for (let d = step; d * scale <= R + 0.5; d += step) {
    g.beginPath(); g.arc(cx, cy, d * scale, 0, 2 * Math.PI); g.stroke();
    g.fillText(`${d} km`, cx + 3, cy - d * scale - 2);
  }
  for (let b = 0; b < 360; b += 45) {
    const a = (b - 90) * Math.PI / 180;
    g.beginPath(); g.moveTo(cx, cy); g.lineTo(cx + R * Math.cos(a), cy + R * Math.sin(a)); g.stroke();
    g.fillText(["N", "NE", "E", "SE", "S", "SW", "W", "NW"][b / 45], cx + (R + 10) * Math.cos(a) - 5, cy + (R + 10) * Math.sin(a) + 4);
  }
  const polar = (rows) => rows.map((p, i) => p && { i, d: p[0] }).filter((p) => p);
  const shape = (pts) => {
    // each sector contributes an arc segment at its distance (tar1090 joins the points)
    g.beginPath();
    pts.forEach((p, j) => {
      const a = ((p.i + 0.5) * outline.sector_deg - 90) * Math.PI / 180;
      const x = cx + p.d * scale * Math.cos(a), y = cy + p.d * scale * Math.sin(a);
      if (j) g.lineTo(x, y); else g.moveTo(x, y);
    });
    g.closePath();
  };
  const all = polar(outline.all_time), day = polar(outline.last_24h);
  if (all.length) { shape(all); g.strokeStyle = "#888"; g.lineWidth = 2; g.stroke(); }
  if (day.length) { shape(day); g.fillStyle = "rgba(20,86,216,0.35)"; g.fill(); g.strokeStyle = "#1456d8"; g.lineWidth = 1.5; g.stroke(); }
  for (const p of day) {
    const a = ((p.i + 0.5) * outline.sector_deg - 90) * Math.PI / 180;
    g.fillStyle = "#1456d8"; g.fillRect(cx + p.d * scale * Math.cos(a) - 1.5, cy + p.d * scale * Math.sin(a) - 1.5, 3, 3);
  }
  g.fillStyle = "#000"; g.fillRect(cx - 2, cy - 2, 4, 4);
  g.fillStyle = "#334"; g.fillText(`max ${num(outline.max_24h_km)} km (24 h), ${num(outline.max_all_km)} km (all)`, 6, H - 6);
  c.dataset.sectors = String(day.length);
  c.dataset.sectorsAll = String(all.length);
}

// ---------------------------------------------------------------- time map

async function loadTimeMap() {
  const src = document.getElementById("timemap-src").value;
  if (!src) return;
  let tm;
  try { tm = await (await fetch(`/api/timemap?src=${encodeURIComponent(src)}&count=5000`)).json(); } catch { return; }
  drawTimeMap(tm);
}

function drawTimeMap(tm) {
  const c = document.getElementById("timemap-plot"), g = c.getContext("2d");
  const W = c.width, H = c.height, L = 38, B = 28, T = 14, Rm = 10;
  g.clearRect(0, 0, W, H);
  const xs = tm.before_s || [], ys = tm.after_s || [];
  let lo = Infinity, hi = -Infinity;
  for (const v of xs.concat(ys)) { const l = Math.log10(v); lo = Math.min(lo, l); hi = Math.max(hi, l); }
  if (!xs.length) { lo = -1; hi = 3; }
  lo = Math.floor(lo); hi = Math.max(Math.ceil(hi), lo + 1);
  const px = (l) => L + (l - lo) / (hi - lo) * (W - L - Rm), py = (l) => H - B - (l - lo) / (hi - lo) * (H - B - T);
  g.strokeStyle = "#dde"; g.fillStyle = "#556"; g.font = "10px system-ui"; g.lineWidth = 1;
  const label = (e) => { const s = 10 ** e; return s >= 86400 ? `${+(s / 86400).toPrecision(2)}d` : s >= 3600 ? `${+(s / 3600).toPrecision(2)}h` : s >= 60 ? `${+(s / 60).toPrecision(2)}m` : `${+s.toPrecision(2)}s`; };
  for (let e = lo; e <= hi; e++) {
    g.beginPath(); g.moveTo(px(e), T); g.lineTo(px(e), H - B); g.moveTo(L, py(e)); g.lineTo(W - Rm, py(e)); g.stroke();
    g.fillText(label(e), px(e) - 8, H - B + 12); g.fillText(label(e), 2, py(e) + 3);
  }
  g.strokeStyle = "#bbb"; g.setLineDash([4, 3]); g.beginPath(); g.moveTo(px(lo), py(lo)); g.lineTo(px(hi), py(hi)); g.stroke(); g.setLineDash([]);
  g.fillStyle = "rgba(226, 70, 28, 0.45)";
  for (let i = 0; i < xs.length; i++) { g.beginPath(); g.arc(px(Math.log10(xs[i])), py(Math.log10(ys[i])), 2, 0, 2 * Math.PI); g.fill(); }
  g.fillStyle = "#334";
  g.fillText(`${tm.src}: ${tm.events} events`, L, 10);
  g.fillText("time since previous →", W / 2 - 40, H - 3);
  c.dataset.points = String(xs.length);
  c.dataset.src = tm.src || "";
}

// ---------------------------------------------------------------- start

async function start() {
  window.addEventListener("resize", resize);
  resize();
  try { state.config = await (await fetch("/api/config")).json(); } catch { state.config = {}; }
  const st = state.config.station || {};
  document.getElementById("station").textContent = st.id ? `· ${st.id}` : "";
  if (!readHash()) setView(st.lat || 0, st.lon || 0, view.w);
  fetch("/static/countries-110m.json").then((r) => r.json()).then((topo) => {
    state.world = decodeTopology(topo, "countries");
    requestDraw();
  });
  connect();
  refreshStats(); refreshRange();
  setInterval(refreshStats, 3000);
  setInterval(refreshRange, 5000);
  setInterval(() => { expireAircraft(); fetchCells(); requestDraw(); }, 1000);
}

// For tests and the console: where a position is on screen, what is shown.
window.geoview = {
  state, view, setView, fitBounds, subscribe,
  project(lat, lon) { const [x, y] = toScreen(lat, lon); const r = wrap.getBoundingClientRect(); return [x + r.left, y + r.top]; },
  markers(layer) { return [...svg.querySelectorAll(layer ? `g.mk.${layer}` : "g.mk")].map((g) => ({ ...g.dataset })); },
};

start();
