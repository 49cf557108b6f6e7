// gantool's browser runtime: load(url) reads the folder `gantool export --format web` wrote (gantool.json,
// the ONNX model and, for conditional models, its class-weight graph) and returns a Generator whose
// sample({labels, seed, n, truncation, classWeights}) gives the uint8 images Python's
// gantool.runtime.Generator gives for the same seed (within the engine's ±1 gray level). Everything about
// the model (input names, latent size, classes, image shape, output range, noise) comes from gantool.json,
// which the exporter writes from the ONNX file's own metadata. onnxruntime-web is found beside this file:
// ./ort/ (vendored, `npm run vendor`) first, then ./node_modules/ (`npm ci`). No build step.

import { checkSeed, makeNoise, NOISE_FUNCTION } from "./noise.js";

export const MANIFEST_FORMAT = "gantool-web/1"; // = gantool.export.browser.MANIFEST_FORMAT
const WEIGHT_SUM_TOL = 1e-3; // = gantool.contract.WEIGHT_SUM_TOL
const ORT_PLACES = ["./ort/ort.wasm.min.mjs", "./node_modules/onnxruntime-web/dist/ort.wasm.min.mjs"];
const CHUNK = 64; // rows per engine call: bounded memory for any n
const SAMPLE_OPTIONS = ["n", "labels", "seed", "truncation", "classWeights"];

/** A bad input or a folder that cannot be used: one line that says what is wrong and what is allowed. */
export class GantoolError extends Error {
  constructor(message) {
    super(message);
    this.name = "GantoolError";
  }
}

const fail = (message) => {
  throw new GantoolError(message);
};

function repr(v) {
  if (typeof v === "string") return `'${v}'`;
  if (typeof v === "bigint") return `${v}n`;
  if (v === undefined || v === null) return "None";
  if (typeof v === "boolean") return v ? "True" : "False";
  if (Array.isArray(v)) return `[${v.map(repr).join(", ")}]`;
  return String(v);
}

let ortModule = null;

/** onnxruntime-web's WebAssembly build, imported once from ./ort/ or ./node_modules/ beside this file. */
export async function importOrt() {
  if (ortModule) return ortModule;
  for (const place of ORT_PLACES) {
    try {
      ortModule = await import(new URL(place, import.meta.url).href);
      return ortModule;
    } catch {
      // not there: try the next place
    }
  }
  return fail(
    "onnxruntime-web was not found beside gantool.js (./ort/ or ./node_modules/onnxruntime-web/). " +
      "Note: run `npm ci` in this folder, or `npm ci && npm run vendor` for an offline copy in ./ort/.",
  );
}

async function fetchOk(url, what) {
  let response;
  try {
    response = await fetch(url);
  } catch (e) {
    fail(`could not fetch ${what} ${url}: ${e.message}. Note: open the page through an HTTP server, not file://.`);
  }
  if (!response.ok) fail(`could not fetch ${what} ${url}: HTTP ${response.status}.`);
  return response;
}

/**
 * Load a generator from a folder written by `gantool export --format web`.
 * url: its gantool.json [default: the one beside this module]. options.numThreads: WebAssembly threads
 * [default: up to 4 when the page is cross-origin isolated (threads need it), else 1]; options.ort: an
 * onnxruntime-web module to use instead of the one beside this file.
 */
export async function load(url = new URL("./gantool.json", import.meta.url).href, options = {}) {
  const base = new URL(url, globalThis.location?.href ?? import.meta.url);
  const manifest = await (await fetchOk(base.href, "the manifest")).json();
  if (manifest.format !== MANIFEST_FORMAT) {
    fail(`${base.href} is not a gantool web manifest (format ${repr(manifest.format)}; allowed: ${MANIFEST_FORMAT}). ` +
      "Note: write the folder with gantool export --format web.");
  }
  if (manifest.noise_function !== NOISE_FUNCTION) {
    fail(`the model draws its noise with ${manifest.noise_function}, but this noise.js implements ${NOISE_FUNCTION}: ` +
      "the same seed would give other images. Note: re-export the folder with this gantool.");
  }
  const ort = options.ort ?? (await importOrt());
  const isolated = globalThis.crossOriginIsolated === true;
  const threads = options.numThreads ?? (isolated ? Math.min(4, globalThis.navigator?.hardwareConcurrency ?? 1) : 1);
  if (!Number.isInteger(threads) || threads < 1) fail(`numThreads must be an integer >= 1, got ${repr(threads)}.`);
  ort.env.wasm.numThreads = threads;
  const open = async (entry) => {
    const bytes = new Uint8Array(await (await fetchOk(new URL(entry.file, base).href, "the model")).arrayBuffer());
    if (bytes.length !== entry.bytes) {
      fail(`${entry.file} has ${bytes.length} bytes, but gantool.json says ${entry.bytes}: the folder is incomplete ` +
        "or mixed. Note: re-export it with gantool export --format web.");
    }
    return ort.InferenceSession.create(bytes, { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
  };
  const [session, mix] = await Promise.all([open(manifest.model), manifest.mix ? open(manifest.mix) : null]);
  return new Generator(manifest, ort, session, mix, threads);
}

/** Images of one sample() call: uint8 pixels (n, height, width[, channels]), the seed used, the timing. */
export class Samples {
  constructor(pixels, n, spec, labels, seed, ms) {
    const [channels, height, width] = [spec.channels, spec.image_size, spec.image_size];
    Object.assign(this, { pixels, n, height, width, channels, labels, seed, ms });
  }

  /** Image i as an ImageData (RGBA) for a canvas. */
  imageData(i) {
    if (!Number.isInteger(i) || i < 0 || i >= this.n) fail(`image index must be an integer in 0..${this.n - 1}, got ${repr(i)}.`);
    const { height, width, channels } = this;
    const size = height * width * channels;
    return this.#rgba(width, height, (x, y) => (i * size) + (y * width + x) * channels);
  }

  /** All images tiled row by row, `columns` per row, 2 black pixels apart (gantool.images.make_grid). */
  grid(columns = 8, pad = 2) {
    const { n, height, width, channels } = this;
    const cols = Math.max(1, Math.min(columns, n));
    const rows = Math.ceil(n / cols);
    const W = cols * (width + pad) + pad, H = rows * (height + pad) + pad;
    const size = height * width * channels;
    return this.#rgba(W, H, (x, y) => {
      const col = Math.floor((x - pad) / (width + pad)), row = Math.floor((y - pad) / (height + pad));
      const ix = x - pad - col * (width + pad), iy = y - pad - row * (height + pad);
      const i = row * cols + col;
      if (x < pad || y < pad || ix >= width || iy >= height || i >= n) return -1;
      return i * size + (iy * width + ix) * channels;
    });
  }

  #rgba(w, h, at) {
    const out = new Uint8ClampedArray(w * h * 4);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const k = at(x, y), o = (y * w + x) * 4;
        if (k >= 0) {
          for (let c = 0; c < 3; c++) out[o + c] = this.pixels[k + (this.channels === 1 ? 0 : c)];
        }
        out[o + 3] = 255;
      }
    }
    return typeof ImageData === "undefined" ? { width: w, height: h, data: out } : new ImageData(out, w, h);
  }
}

/** One loaded model: validates inputs as Python's Generator does, draws gantool's noise, runs the graph. */
export class Generator {
  #queue = Promise.resolve(); // one run at a time: onnxruntime-web's sessions are not re-entrant

  constructor(manifest, ort, session, mix, threads) {
    Object.assign(this, { manifest, ort, session, mix, threads });
    this.spec = manifest.spec;
    this.maxN = manifest.max_n;
    const [low, high] = this.spec.output_range;
    const f = Math.fround;
    this.scale = f(255 / (high - low)); // gantool.images.Uint8Map, in float32 as numpy computes it
    this.offset = f(0.5 - f(low * this.scale));
  }

  get conditional() {
    return this.spec.conditional;
  }

  get numClasses() {
    return this.spec.num_classes;
  }

  #count(n) {
    if (typeof n !== "number" || !Number.isInteger(n)) fail(`n must be an integer, got ${repr(n)}.`);
    if (n < 1 || n > this.maxN) fail(`n must be in 1..${this.maxN}, got ${n}.`);
    return n;
  }

  checkLabels(labels) {
    const { arch, num_classes: K } = this.spec;
    if (!this.conditional) fail(`${arch} is unconditional; it takes no labels (pass n instead).`);
    const arr = typeof labels === "number" ? [labels] : labels;
    if (!Array.isArray(arr) && !ArrayBuffer.isView(arr)) fail(`labels must be a 1-D sequence of integers, got ${repr(labels)}.`);
    const row = Array.from(arr).find((y) => Array.isArray(y) || ArrayBuffer.isView(y));
    if (row !== undefined) fail(`labels must be a 1-D sequence of integers, got shape (${arr.length}, ${row.length}).`);
    for (const y of arr) {
      if (typeof y !== "number" || !Number.isInteger(y)) fail(`labels must be integers in 0..${K - 1}, got ${repr(y)}.`);
      if (y < 0 || y >= K) fail(`label ${y} is out of range; allowed: 0..${K - 1}.`);
    }
    return Array.from(arr);
  }

  checkClassWeights(weights) {
    const { arch, num_classes: K } = this.spec;
    if (!this.conditional) fail(`${arch} is unconditional; it takes no class weights (pass n instead).`);
    if (!this.mix) fail(`this folder has no class-weight graph (gantool.json names no mix model).`);
    const isRow = (w) => Array.isArray(w) || ArrayBuffer.isView(w);
    if (!isRow(weights) || weights.length === 0) fail(`class weights have no rows; give one row of ${K} weights per image.`);
    const rows = Array.from(weights).every((w) => typeof w === "number") ? [Array.from(weights)]
      : Array.from(weights, (w) => (isRow(w) ? Array.from(w) : w));
    const out = new Float32Array(rows.length * K);
    rows.forEach((row, r) => {
      if (!Array.isArray(row) || row.length !== K) fail(`class weights must have shape (n, ${K}), one row per image; row ${r} is ${repr(row)}.`);
      let sum = 0;
      row.forEach((w, k) => {
        if (typeof w !== "number") fail(`class weights must be numbers, shape (n, ${K}); row ${r} has ${repr(w)}.`);
        if (!Number.isFinite(w)) fail("class weights must be finite.");
        if (w < 0) fail(`class weights must be non-negative; row ${r} has ${w}.`);
        sum += w;
        out[r * K + k] = w;
      });
      if (Math.abs(sum - 1) > WEIGHT_SUM_TOL) fail(`each row of class weights must sum to 1 (within ${WEIGHT_SUM_TOL}); row ${r} sums to ${Number(sum.toPrecision(6))}.`);
    });
    return { weights: out, rows: rows.length };
  }

  /**
   * uint8 images for {n, labels, seed, truncation, classWeights}, in the order and with the checks of
   * Python's Generator.sample: labels (conditional) give one image each, cycled 0..K-1 when absent;
   * classWeights (rows of K non-negative weights summing to 1) run the class-weight graph; no seed draws
   * a fresh one (returned in .seed, so a grid can be replayed).
   */
  async sample(options = {}) {
    const unknown = Object.keys(options).filter((k) => !SAMPLE_OPTIONS.includes(k));
    if (unknown.length) fail(`unknown option ${repr(unknown[0])}; allowed: ${SAMPLE_OPTIONS.join(", ")}.`);
    const { n, labels, truncation = 1, classWeights } = options;
    let { seed } = options;
    const started = performance.now();
    const K = this.spec.num_classes;
    if (typeof truncation !== "number" || !(truncation > 0 && truncation <= 1)) {
      fail(`truncation must be a number in (0, 1], got ${repr(truncation)} (1: no truncation).`);
    }
    let count, condition, conditionName = null, graph = this.session;
    if (classWeights !== undefined && classWeights !== null) {
      if (labels !== undefined && labels !== null) fail("give labels or classWeights, not both (a one-hot row is its label).");
      const { weights, rows } = this.checkClassWeights(classWeights);
      count = this.#count(rows);
      if (n !== undefined && this.#count(n) !== count) fail(`n=${n} but ${count} rows of class weights were given; give one row per image.`);
      condition = { data: weights, dims: [count, K], type: "float32" };
      conditionName = this.manifest.mix.inputs[1];
      graph = this.mix;
    } else if (labels !== undefined && labels !== null) {
      const y = this.checkLabels(labels);
      count = this.#count(n === undefined ? y.length : n);
      if (count !== y.length) fail(`n=${count} but ${y.length} labels were given; give one label per image.`);
      condition = y;
    } else {
      count = this.#count(n === undefined ? 1 : n);
      if (this.conditional) condition = Array.from({ length: count }, (_, i) => i % K);
    }
    if (seed === undefined || seed === null) {
      seed = globalThis.crypto.getRandomValues(new Uint32Array(1))[0]; // 32 bits, as gantool's CLI draws
    } else {
      try {
        checkSeed(seed); // any integer >= 0, as numpy and Python's Generator take (BigInt past 2**53 - 1)
      } catch (e) {
        fail(e.message);
      }
    }
    const dim = this.spec.latent_dim;
    const z = makeNoise(seed, count, dim, this.spec.noise, truncation);
    const labelsOut = Array.isArray(condition) ? condition : null;
    if (labelsOut) {
      condition = { data: BigInt64Array.from(labelsOut, BigInt), dims: [count], type: "int64" };
      conditionName = this.manifest.model.inputs[1];
    }
    const entry = graph === this.mix ? this.manifest.mix : this.manifest.model;
    const pixelsPer = this.spec.channels * this.spec.image_size * this.spec.image_size;
    const pixels = new Uint8Array(count * pixelsPer);
    const turn = this.#queue.then(() => this.#run(graph, entry, z, dim, condition, conditionName, count, pixels));
    this.#queue = turn.catch(() => {}); // a failed run does not block the next one
    await turn;
    return new Samples(pixels, count, this.spec, labelsOut, seed, performance.now() - started);
  }

  async #run(graph, entry, z, dim, condition, conditionName, count, pixels) {
    const K = this.spec.num_classes;
    const pixelsPer = this.spec.channels * this.spec.image_size * this.spec.image_size;
    for (let start = 0; start < count; start += CHUNK) {
      const rows = Math.min(CHUNK, count - start);
      const feeds = { [entry.inputs[0]]: new this.ort.Tensor("float32", z.subarray(start * dim, (start + rows) * dim), [rows, dim]) };
      if (condition) {
        const per = condition.dims.length === 1 ? 1 : K;
        feeds[conditionName] = new this.ort.Tensor(condition.type, condition.data.subarray(start * per, (start + rows) * per),
          condition.dims.length === 1 ? [rows] : [rows, K]);
      }
      const out = (await graph.run(feeds))[entry.outputs[0]];
      this.#toUint8(out.data, pixels, start * pixelsPer);
      out.dispose?.();
    }
  }

  // (rows, C, H, W) floats in the output range -> (rows, H, W, C) gray levels, as gantool.images.Uint8Map:
  // x * scale + offset in float32, clipped to [0, 255.5], truncated
  #toUint8(x, pixels, at) {
    const f = Math.fround, { scale, offset } = this;
    const C = this.spec.channels, HW = this.spec.image_size * this.spec.image_size;
    for (let i = 0; i < x.length; i++) {
      const v = f(f(x[i] * scale) + offset);
      const level = v > 255.5 ? 255 : v >= 0 ? Math.trunc(v) : 0;
      if (C === 1) {
        pixels[at + i] = level;
      } else {
        const img = Math.floor(i / (C * HW)), c = Math.floor(i / HW) % C, p = i % HW;
        pixels[at + (img * HW + p) * C + c] = level;
      }
    }
  }

  release() {
    this.session.release?.();
    this.mix?.release?.();
  }
}
