// The analyst's page: send one image to POST /v1/inspect, show the verdict per layer,
// the payload, the metadata label and the heatmap over the image; fetch the HTML report
// from POST /v1/inspect/report. Plain DOM, no libraries; every value from the service is
// written as text (textContent), never as HTML.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const drop = $("drop"), fileInput = $("file"), status = $("status"), result = $("result");
  const canvas = $("map"), ctx = canvas.getContext("2d");
  const view = { name: "heatmap", original: null, heatmap: null, tamper: null };
  let current = null; // { file, body }

  const LAYER_TEXT = {
    metadata: { valid: ["valid label", "ok"], invalid: ["malformed label", "bad"], absent: ["no label", "none"] },
    integrity: { valid: ["matches", "ok"], invalid: ["does not match", "bad"], absent: ["no integrity code", "none"], "not checked": ["not checked", "none"] },
    c2pa: { valid: ["valid manifest", "ok"], invalid: ["invalid manifest", "bad"], absent: ["no manifest", "none"] },
    explicit: { "not checked": ["not checked", "none"] },
  };
  const LAYER_NAMES = { integrity: "Integrity code", c2pa: "C2PA manifest", explicit: "Visible label" };

  function setStatus(text, kind) {
    status.textContent = "";
    status.className = "status" + (kind === "error" ? " error" : "");
    if (kind === "busy") {
      const s = document.createElement("span");
      s.className = "spinner";
      status.appendChild(s);
    }
    status.appendChild(document.createTextNode(text));
  }

  function row(table, label, value, cls) {
    const tr = document.createElement("tr");
    const th = document.createElement("th");
    th.textContent = label;
    const td = document.createElement("td");
    if (value instanceof Node) td.appendChild(value);
    else td.textContent = value === null || value === undefined || value === "" ? "\u2014" : String(value);
    if (cls) td.className = cls;
    tr.append(th, td);
    table.appendChild(tr);
  }

  function pill(text, cls) {
    const s = document.createElement("span");
    s.className = "pill " + cls;
    s.textContent = text;
    return s;
  }

  function probability(p) {
    // 1.7e-34 is shown as 1.7 x 10 with a superscript -34.
    if (p === null || p === undefined) return "\u2014";
    if (p >= 0.01) return p.toFixed(2);
    const [mant, exp] = p.toExponential(1).split("e");
    const span = document.createElement("span");
    const sup = document.createElement("sup");
    sup.textContent = exp.replace("-", "\u2212");
    span.append(mant + " \u00d7 10", sup);
    return span;
  }

  function percent(x) { return (100 * x).toFixed(1) + "%"; }

  function headers() {
    const h = {};
    const key = $("api-key").value.trim();
    if (key) h["X-API-Key"] = key;
    return h;
  }

  function form(file) {
    // A multipart form, so that the service can name the report after the file.
    const f = new FormData();
    f.append("file", file, file.name);
    return f;
  }

  function query(extra) {
    const q = new URLSearchParams(extra);
    q.set("search", $("thorough").checked ? "exhaustive" : "fast");
    const provider = $("provider").value.trim();
    if (provider) q.set("provider", provider);
    return q.toString();
  }

  async function errorText(resp) {
    try {
      const body = await resp.json();
      if (body && body.message) return body.message + " (HTTP " + resp.status + ")";
    } catch (e) { /* not JSON */ }
    return "the service answered HTTP " + resp.status;
  }

  function loadImage(src) {
    return new Promise((resolve, reject) => {
      const img = new Image();
      img.onload = () => resolve(img);
      img.onerror = () => reject(new Error("cannot display this image"));
      img.src = src;
    });
  }

  async function inspect(file) {
    current = null;
    result.hidden = true;
    setStatus("Reading " + file.name + " \u2026", "busy");
    let resp;
    try {
      resp = await fetch("/v1/inspect?" + query({ images: "true" }), {
        method: "POST", body: form(file), headers: headers(),
      });
    } catch (e) {
      setStatus("Could not reach the service: " + e.message, "error");
      return;
    }
    if (!resp.ok) {
      setStatus("Could not check " + file.name + ": " + await errorText(resp), "error");
      return;
    }
    const body = await resp.json();
    current = { file, body };
    await show(body, file);
    setStatus("Checked " + file.name + " (" + body.width + " \u00d7 " + body.height + " px).");
  }

  async function show(body, file) {
    const wm = body.watermark, md = body.metadata, layers = body.layers;
    // Verdict across layers.
    const v = $("verdict");
    v.className = "verdict " + (body.verdict_class || "none");
    $("verdict-text").textContent = body.verdict;
    $("verdict-help").textContent = body.verdict_explanation || "";

    // Watermark.
    const wmState = $("wm-state");
    wmState.textContent = wm.found ? "watermark present" : "no watermark found";
    wmState.className = "layer " + (wm.found ? "ok" : "none");
    const wt = $("wm-table");
    wt.textContent = "";
    if (wm.found) {
      const p = wm.payload;
      row(wt, "Content ID", p.content_id, "mono");
      row(wt, "Provider", p.provider, "mono");
      row(wt, "Label", p.label + " \u2014 " + p.label_meaning);
      row(wt, "False-alarm probability", probability(wm.false_alarm_probability));
      row(wt, "Sync score", wm.sync_score === null ? null : wm.sync_score.toFixed(1));
      if (Math.abs(wm.scale - 1) > 0.005 || Math.abs(wm.rotation) > 0.05) {
        row(wt, "Geometry", "scale " + wm.scale.toFixed(3) + ", rotation " + wm.rotation.toFixed(2) + "\u00b0");
      }
      row(wt, "Format version", p.version);
    } else {
      row(wt, "Why", wm.reason);
      row(wt, "False-alarm probability", probability(wm.false_alarm_probability));
    }
    row(wt, "Key fingerprint", wm.key_fingerprint, "mono");

    // Metadata label.
    const mdState = $("md-state");
    const [mdText, mdCls] = LAYER_TEXT.metadata[layers.metadata] || [layers.metadata, "none"];
    mdState.textContent = mdText;
    mdState.className = "layer " + mdCls;
    const mt = $("md-table");
    mt.textContent = "";
    if (md && md.label) {
      for (const [k, val] of Object.entries(md.label)) {
        row(mt, k, k === "Label" && md.label_meaning ? val + " \u2014 " + md.label_meaning : val, k === "Label" ? "" : "mono");
      }
      if (md.source) row(mt, "Stored in", md.source);
    } else if (md && md.raw_json) {
      row(mt, "Raw value", md.raw_json, "mono");
    } else {
      row(mt, "Found", body.container === "?" ? "the container could not be parsed" : "nothing in the file's metadata");
    }
    if (md && md.digital_source_type) row(mt, "IPTC source type", md.digital_source_type, "mono");

    // Other layers.
    const ot = $("other-table");
    ot.textContent = "";
    for (const [name, state] of Object.entries(layers)) {
      if (name === "metadata" || name === "watermark") continue;
      const known = (LAYER_TEXT[name] || {})[state];
      row(ot, LAYER_NAMES[name] || name, pill(known ? known[0] : state, known ? known[1] : "none"));
    }
    row(ot, "Container", body.container.toUpperCase());

    // Problems.
    const probs = $("problems");
    probs.textContent = "";
    for (const p of body.problems) {
      const li = document.createElement("li");
      li.textContent = p;
      probs.appendChild(li);
    }
    $("card-problems").hidden = body.problems.length === 0;

    // The map.
    const t = body.tamper;
    $("map-summary").textContent = t.available
      ? "Mark present in " + percent(t.present_fraction) + " of the analysed area, missing in "
        + percent(t.missing_fraction) + ", cannot be judged in " + percent(t.inconclusive_fraction) + "."
        + (t.weak_mark && t.missing_fraction > 0
          ? " The mark is weak in the whole copy, as after strong compression: that can leave"
            + " areas without it too; compare with another copy."
          : "")
      : "No map: " + t.reason + ".";
    const url = URL.createObjectURL(file);
    try {
      view.original = await loadImage(url);
    } catch (e) {
      view.original = null;
    }
    const pics = body.images || {};
    view.heatmap = pics.evidence_heatmap ? await loadImage(pics.evidence_heatmap) : null;
    view.tamper = pics.tamper_overlay ? await loadImage(pics.tamper_overlay) : null;
    for (const b of document.querySelectorAll(".seg button")) {
      const name = b.dataset.view;
      b.disabled = name !== "image" && !view[name === "heatmap" ? "heatmap" : "tamper"];
    }
    result.hidden = false;
    select(view.heatmap ? "heatmap" : "image");
    const top = result.getBoundingClientRect().top;
    if (top > window.innerHeight * 0.6) result.scrollIntoView({ block: "start" });
  }

  function draw() {
    const base = view.original;
    const overlay = view.name === "heatmap" ? view.heatmap : view.name === "tamper" ? view.tamper : null;
    const ref = overlay || base;
    if (!ref) {
      canvas.dataset.drawn = "";
      return;
    }
    // The overlays are at most 1024 px on their long side; draw everything at that size.
    const w = overlay ? overlay.naturalWidth : Math.min(base.naturalWidth, 1024 * base.naturalWidth / Math.max(base.naturalWidth, base.naturalHeight));
    const h = overlay ? overlay.naturalHeight : Math.round(w * base.naturalHeight / base.naturalWidth);
    canvas.width = Math.round(w);
    canvas.height = Math.round(h);
    ctx.globalAlpha = 1;
    if (base) ctx.drawImage(base, 0, 0, canvas.width, canvas.height);
    if (overlay) {
      ctx.globalAlpha = base ? Number($("opacity").value) / 100 : 1;
      ctx.drawImage(overlay, 0, 0, canvas.width, canvas.height);
      ctx.globalAlpha = 1;
    }
    canvas.dataset.drawn = overlay ? view.name : "image";
  }

  function select(name) {
    view.name = name;
    for (const b of document.querySelectorAll(".seg button")) {
      b.setAttribute("aria-pressed", String(b.dataset.view === name));
    }
    $("opacity-row").hidden = name === "image";
    const legend = $("legend");
    legend.hidden = name === "image";
    legend.className = "legend" + (name === "tamper" ? " tamper" : "");
    const spans = legend.querySelectorAll("span:not(.scale)");
    const texts = name === "tamper"
      ? ["red: mark missing (content replaced after marking)", "hatched: cannot be judged", "", ""]
      : ["red: no mark", "white: undecided", "blue: mark as expected", "hatched: cannot be judged"];
    spans.forEach((s, i) => { s.textContent = texts[i]; s.hidden = !texts[i]; });
    canvas.setAttribute("aria-label", name === "image" ? "The examined image"
      : name === "heatmap" ? "The image with the evidence heatmap over it" : "The image with the tamper map over it");
    draw();
  }

  async function downloadReport() {
    if (!current) return;
    const btn = $("download");
    btn.disabled = true;
    setStatus("Preparing the HTML report \u2026", "busy");
    try {
      const resp = await fetch("/v1/inspect/report?" + query({}), {
        method: "POST", body: form(current.file), headers: headers(),
      });
      if (!resp.ok) {
        setStatus(await errorText(resp), "error");
        return;
      }
      const blob = await resp.blob();
      const cd = resp.headers.get("Content-Disposition") || "";
      const m = /filename="([^"]+)"/.exec(cd);
      const a = document.createElement("a");
      a.href = URL.createObjectURL(blob);
      a.download = m ? m[1] : "report.html";
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 10000);
      setStatus("Report saved as " + a.download + ".");
    } catch (e) {
      setStatus("Could not fetch the report: " + e.message, "error");
    } finally {
      btn.disabled = false;
    }
  }

  function take(files) {
    if (!files || !files.length) return;
    inspect(files[0]);
  }

  $("choose").addEventListener("click", (e) => { e.stopPropagation(); fileInput.click(); });
  drop.addEventListener("click", () => fileInput.click());
  drop.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); fileInput.click(); }
  });
  fileInput.addEventListener("change", () => { take(fileInput.files); fileInput.value = ""; });
  for (const ev of ["dragenter", "dragover"]) {
    drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.add("over"); });
  }
  for (const ev of ["dragleave", "drop"]) {
    drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.remove("over"); });
  }
  drop.addEventListener("drop", (e) => take(e.dataTransfer && e.dataTransfer.files));
  for (const b of document.querySelectorAll(".seg button")) {
    b.addEventListener("click", () => select(b.dataset.view));
  }
  $("opacity").addEventListener("input", draw);
  $("download").addEventListener("click", downloadReport);
  $("again").addEventListener("click", () => {
    result.hidden = true;
    setStatus("");
    window.scrollTo(0, 0);
    fileInput.click();
  });
})();
