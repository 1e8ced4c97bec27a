// Chapter 3's live figure (ood_utils/live.py). It draws the figure from the data that the
// build wrote into the page, turns a drawing into an MNIST-like input, and runs the
// exported twins (onnxruntime-web, single-threaded WebAssembly) once the reader presses
// Start. Every number it shows is an output of that graph (or, where the graph cannot
// run, the PyTorch output the build stored for the example).
(function () {
  "use strict";
  const SIDE = 28, BOX = 20, PAD = 280, BRUSH = 22;
  const scripts = document.querySelectorAll("script.twins-live-data:not([data-done])");
  const node = scripts[scripts.length - 1];
  if (!node) return;
  node.dataset.done = "1";
  const root = node.parentElement;
  const data = JSON.parse(node.textContent);
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const mb = (bytes) => (bytes / 1e6).toFixed(1) + " MB";
  const num = (x) => (x === 0 ? "0" : Math.abs(x) >= 0.01 && Math.abs(x) < 1e4
    ? x.toPrecision(3) : x.toExponential(2));

  // ---- the figure's parts -------------------------------------------------------------
  const status = root.querySelector(".twins-live-status");
  const row = el("div", "tl-row");
  const padBox = el("div");
  const pad = el("canvas", "tl-pad tl-off");
  pad.width = pad.height = PAD;
  pad.setAttribute("aria-label", "Drawing pad: draw a digit");
  padBox.append(pad, el("p", "tl-caption", "draw here (mouse or finger)"));
  const seenBox = el("div");
  const seen = el("canvas", "tl-seen");
  seen.width = seen.height = SIDE;
  seenBox.append(seen, el("p", "tl-caption", "what the twins see"));
  const out = el("div");
  const charts = el("div", "tl-charts");
  const chart = (cls, label) => {
    const box = el("div", cls);
    const bars = el("div", "tl-chart");
    const ticks = el("div", "tl-ticks");
    for (let c = 0; c < 10; c++) {
      bars.append(el("div", "tl-bar"));
      ticks.append(el("span", "", String(c)));
    }
    box.dataset.out = cls === "tl-one" ? "p1" : "p2";
    box.append(el("p", "tl-caption", label), bars, ticks);
    charts.append(box);
    return box;
  };
  const one = chart("tl-one", "twin 1: softmax");
  const two = chart("tl-two", "twin 2: softmax");
  const readout = el("dl", "tl-readout");
  const field = (name, label) => {
    readout.append(el("dt", "", label));
    const dd = el("dd");
    dd.dataset.out = name;
    readout.append(dd);
    return dd;
  };
  const fields = {
    classes: field("classes", "predicted classes"),
    score: field("score", "twin score"),
    ratio: field("ratio", "score / reference"),
    disagree: field("disagree", "twins disagree"),
    flag: field("flag", "verdict"),
  };
  fields.flag.classList.add("tl-verdict");
  out.append(charts, readout);
  row.append(padBox, seenBox, out);
  const buttons = el("div", "tl-buttons");
  const start = el("button", "tl-start");
  const clear = el("button", "", "Clear");
  clear.disabled = true;
  buttons.append(start, clear);
  const exampleButtons = data.examples.map((ex, i) => {
    const b = el("button", "tl-example", ex.name);
    b.dataset.example = String(i);
    buttons.append(b);
    return b;
  });
  status.textContent = "";
  root.append(row, buttons, status);

  // ---- showing one result ---------------------------------------------------------------
  const showImage = (pixels) => {
    const ctx = seen.getContext("2d");
    const img = ctx.createImageData(SIDE, SIDE);
    for (let i = 0; i < SIDE * SIDE; i++) {
      const v = Math.round(255 * Math.min(1, Math.max(0, pixels[i])));
      img.data.set([v, v, v, 255], 4 * i);
    }
    ctx.putImageData(img, 0, 0);
  };
  const argmax = (p) => p.indexOf(Math.max(...p));
  const showResult = (r) => {
    [[one, r.p1], [two, r.p2]].forEach(([box, p]) => {
      box.dataset.value = JSON.stringify(p);
      const top = argmax(p);
      box.querySelectorAll(".tl-bar").forEach((bar, c) => {
        bar.style.height = (100 * p[c]).toFixed(2) + "%";
        bar.title = `class ${c}: ${(100 * p[c]).toFixed(1)}%`;
      });
      box.querySelectorAll(".tl-ticks span").forEach((s, c) => s.classList.toggle("tl-top", c === top));
    });
    const [c1, c2] = [argmax(r.p1), argmax(r.p2)];
    fields.classes.textContent = `twin 1: ${c1} (${(100 * r.p1[c1]).toFixed(0)}%), twin 2: ${c2} (${(100 * r.p2[c2]).toFixed(0)}%)`;
    fields.score.dataset.value = String(r.score);
    fields.score.textContent = `${num(r.score)} nats`;
    fields.ratio.dataset.value = String(r.ratio);
    fields.ratio.textContent = `${num(r.ratio)} x the reference (flag above ${data.k})`;
    fields.disagree.dataset.value = String(r.disagree);
    fields.disagree.textContent = r.disagree ? "yes" : "no";
    fields.flag.dataset.value = String(r.flag);
    fields.flag.textContent = r.flag ? "flagged: out of distribution" : "accepted as a digit";
    fields.flag.classList.toggle("tl-flagged", r.flag);
    fields.flag.classList.toggle("tl-accepted", !r.flag);
  };
  const decode = (b64) => {
    const bytes = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
    return new Float32Array(bytes.buffer);
  };
  const examples = data.examples.map((ex) => ({ ...ex, x: decode(ex.pixels) }));

  // ---- a drawing, made to look like MNIST ---------------------------------------------
  // MNIST digits were scaled to fit a 20x20 box (aspect kept, anti-aliased) and centred by
  // their centre of mass in 28x28: the same is done to the drawing.
  const toMnist = () => {
    const src = ctx.getImageData(0, 0, PAD, PAD).data;
    const a = new Float32Array(PAD * PAD);
    let x0 = PAD, y0 = PAD, x1 = -1, y1 = -1;
    for (let y = 0; y < PAD; y++) for (let x = 0; x < PAD; x++) {
      const v = src[4 * (y * PAD + x)] / 255;
      a[y * PAD + x] = v;
      if (v > 0) { x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y); }
    }
    const image = new Float32Array(SIDE * SIDE);
    if (x1 < 0) return image;
    const w = x1 - x0 + 1, h = y1 - y0 + 1, s = BOX / Math.max(w, h);
    const tw = Math.max(1, Math.round(w * s)), th = Math.max(1, Math.round(h * s));
    const small = new Float32Array(tw * th);
    const N = 4;  // N x N samples per target pixel: area averaging when shrinking
    const at = (x, y) => {  // bilinear, zero outside the box
      const xf = Math.floor(x), yf = Math.floor(y), dx = x - xf, dy = y - yf;
      const p = (i, j) => (i < x0 || i > x1 || j < y0 || j > y1 ? 0 : a[j * PAD + i]);
      return (1 - dx) * (1 - dy) * p(xf, yf) + dx * (1 - dy) * p(xf + 1, yf) +
        (1 - dx) * dy * p(xf, yf + 1) + dx * dy * p(xf + 1, yf + 1);
    };
    let mass = 0, mx = 0, my = 0;
    for (let v = 0; v < th; v++) for (let u = 0; u < tw; u++) {
      let sum = 0;
      for (let j = 0; j < N; j++) for (let i = 0; i < N; i++)
        sum += at(x0 - 0.5 + (u + (i + 0.5) / N) * w / tw, y0 - 0.5 + (v + (j + 0.5) / N) * h / th);
      const val = Math.min(1, sum / (N * N));
      small[v * tw + u] = val;
      mass += val; mx += val * u; my += val * v;
    }
    if (mass === 0) return image;
    const ox = Math.round((SIDE - 1) / 2 - mx / mass), oy = Math.round((SIDE - 1) / 2 - my / mass);
    for (let v = 0; v < th; v++) for (let u = 0; u < tw; u++) {
      const X = u + ox, Y = v + oy;
      if (X >= 0 && X < SIDE && Y >= 0 && Y < SIDE) image[Y * SIDE + X] = small[v * tw + u];
    }
    return image;
  };

  // ---- where the graph cannot run, say why ----------------------------------------------
  const state = { session: null, ort: null, busy: false, again: null, times: [], input: null };
  window.twinsLive = state;
  const why = () => {
    if (!data.model) return data.offline;
    if (location.protocol === "file:")
      return "This page was opened from disk, and browsers load no WebAssembly from file:// " +
        "pages: serve the folder instead (python -m http.server -d _build/html) and open " +
        "http://localhost:8000. Below: the examples' outputs, computed in PyTorch at build time.";
    if (!data.runtime) return data.no_runtime;
    if (typeof WebAssembly !== "object")
      return "This browser has no WebAssembly: below are the examples' outputs, computed in " +
        "PyTorch when the page was built.";
    return null;
  };
  const reason = why();
  const precomputed = (i) => {
    showImage(examples[i].x);
    showResult(examples[i].torch);
  };
  const size = data.model && data.runtime
    ? data.runtime.reduce((t, f) => t + f.bytes, data.model.bytes) : 0;
  if (reason) {
    start.textContent = "Live twins unavailable";
    start.disabled = true;
    status.textContent = reason;
    exampleButtons.forEach((b, i) => b.addEventListener("click", () => precomputed(i)));
    precomputed(0);
    return;
  }
  start.textContent = `Start the live twins (downloads ${mb(size)})`;
  exampleButtons.forEach((b) => (b.disabled = true));
  precomputed(0);
  status.textContent = `Press Start to load the twins (${mb(data.model.bytes)}) and the ` +
    `browser runtime onnxruntime-web (${mb(size - data.model.bytes)}); nothing is downloaded before.`;

  // ---- running the twins ------------------------------------------------------------------
  const infer = async (x) => {
    if (state.busy) { state.again = x; return; }
    state.busy = true;
    state.input = Array.from(x);
    showImage(x);
    const feeds = { images: new state.ort.Tensor("float32", x, [1, 1, SIDE, SIDE]) };
    let r;
    try {
      const t0 = performance.now();
      r = await state.session.run(feeds);
      state.times.push(performance.now() - t0);
    } catch (err) {
      status.textContent = `The twins failed on this input (${err}).`;
      state.busy = false;
      return;
    }
    const lp = r.log_probs.data;
    showResult({
      p1: Array.from(lp.slice(0, 10), Math.exp),
      p2: Array.from(lp.slice(10, 20), Math.exp),
      score: r.score.data[0], ratio: r.ratio.data[0],
      disagree: Boolean(r.disagree.data[0]), flag: Boolean(r.flag.data[0]),
    });
    const sorted = [...state.times].sort((p, q) => p - q);
    status.textContent = `Running in this browser: ${sorted[sorted.length >> 1].toFixed(1)} ms ` +
      `per input (median of ${sorted.length}). Reference ${data.ref.toPrecision(3)} nats; ` +
      `flag above ${data.k} x the reference, or when the twins disagree.`;
    state.busy = false;
    if (state.again) { const next = state.again; state.again = null; infer(next); }
  };
  state.infer = infer;  // for the tests: one inference, timed like the reader's
  start.addEventListener("click", async () => {
    start.disabled = true;
    status.textContent = "Loading the twins and the runtime ...";
    try {
      const base = new URL((document.documentElement.dataset.content_root || "../") +
        "_static/" + data.folder + "/", location.href).href;
      state.ort = await import(base + data.runtime[0].file);
      state.ort.env.wasm.numThreads = 1;
      state.ort.env.wasm.proxy = false;
      // the module's own glue (bundled), the WebAssembly binary from the site
      state.ort.env.wasm.wasmPaths = { wasm: base + data.runtime[1].file };
      state.session = await state.ort.InferenceSession.create(base + data.model.file,
        { executionProviders: ["wasm"] });
    } catch (err) {
      status.textContent = `The twins could not start here (${err}); below are the ` +
        "examples' outputs computed in PyTorch at build time.";
      exampleButtons.forEach((b, i) => { b.disabled = false; b.onclick = () => precomputed(i); });
      precomputed(0);
      return;
    }
    start.textContent = "Live twins running";
    pad.classList.remove("tl-off");
    clear.disabled = false;
    exampleButtons.forEach((b, i) => {
      b.disabled = false;
      b.addEventListener("click", () => { clearPad(); infer(examples[i].x); });
    });
    await infer(examples[0].x);
  });

  // ---- the drawing pad (pointer events: mouse, pen and touch) -----------------------------
  const ctx = pad.getContext("2d", { willReadFrequently: true });
  const clearPad = () => { ctx.fillStyle = "#000"; ctx.fillRect(0, 0, PAD, PAD); };
  clearPad();
  let last = null, frame = 0;
  const point = (e) => {
    const r = pad.getBoundingClientRect();
    return [(e.clientX - r.left) * PAD / r.width, (e.clientY - r.top) * PAD / r.height];
  };
  const update = () => {
    if (frame) return;
    frame = requestAnimationFrame(() => { frame = 0; infer(toMnist()); });
  };
  pad.addEventListener("pointerdown", (e) => {
    if (!state.session) return;
    e.preventDefault();
    pad.setPointerCapture(e.pointerId);
    last = point(e);
    ctx.fillStyle = "#fff";
    ctx.beginPath();
    ctx.arc(last[0], last[1], BRUSH / 2, 0, 2 * Math.PI);
    ctx.fill();
    update();
  });
  pad.addEventListener("pointermove", (e) => {
    if (!last) return;
    e.preventDefault();
    const p = point(e);
    ctx.strokeStyle = "#fff";
    ctx.lineWidth = BRUSH;
    ctx.lineCap = ctx.lineJoin = "round";
    ctx.beginPath();
    ctx.moveTo(last[0], last[1]);
    ctx.lineTo(p[0], p[1]);
    ctx.stroke();
    last = p;
    update();
  });
  const lift = () => { last = null; };
  pad.addEventListener("pointerup", lift);
  pad.addEventListener("pointercancel", lift);
  clear.addEventListener("click", () => { clearPad(); infer(toMnist()); });
})();
