// gantool's noise function in JavaScript: makeNoise(seed, n, latentDim, distribution, truncation) returns
// the same float32 z, bit for bit, as Python's gantool.noise.make_noise, so a web page draws the same
// digits for a seed as the Python runtime. It reimplements numpy's stream: SeedSequence -> PCG64 (XSL-RR)
// -> Generator.random / standard_normal with dtype=float32 (numpy's float ziggurat). numpy promises that
// stream only within a numpy version; this was checked against numpy 2.4.6 (its C sources and its
// output, tests/web/test_noise_js.py), so a page should compare NOISE_FUNCTION with the model's metadata
// and a model exported with a numpy whose samplers changed needs this file rechecked. One part is not
// numpy's own: the ziggurat's tail (|z| > 3.654, ~1 draw in 4,000) calls the C library's log1pf; this
// reproduces glibc's (Linux; checked on glibc 2.36), and a libm with another log1pf can differ there by
// one float ulp. No dependencies; 128-bit arithmetic in BigInt, C float arithmetic emulated with Math.fround.

export const NOISE_FUNCTION = "gantool.noise.make_noise/pcg64-v1"; // = gantool.noise.NOISE_FUNCTION
export const DISTRIBUTIONS = ["normal", "uniform"];
export const MAX_SEED = 2 ** 32 - 1; // = gantool.noise.MAX_SEED: the CLI's seeds (makeNoise takes any integer >= 0)
const TRUNCATION_STREAM = 1; // Gaussian rows are redrawn from PCG64([seed, 1]), as in Python

const fround = Math.fround;
const MASK64 = (1n << 64n) - 1n;
const MASK128 = (1n << 128n) - 1n;
const PCG_MULT = 0x2360ed051fc65da44385df649fccf645n;

// numpy/random/bit_generator.pyx: SeedSequence's hash constants (uint32 arithmetic, XSHIFT = 16).
const INIT_A = 0x43b0d7e5, MULT_A = 0x931e8875, INIT_B = 0x8b51f9dd, MULT_B = 0x58f38ded;
const MIX_MULT_L = 0xca01f9dd, MIX_MULT_R = 0x4973f715;
const POOL_SIZE = 4;

// SeedSequence(entropy).generate_state(8, uint32): entropy is the list of uint32 words numpy makes of
// the seed (an int < 2**32 is one word, 0 included; [seed, 1] is two). No spawn key.
function seedSequenceState(words, nWords) {
  let hashConst = INIT_A;
  const hashmix = (value) => {
    value = (value ^ hashConst) >>> 0;
    hashConst = Math.imul(hashConst, MULT_A) >>> 0;
    value = Math.imul(value, hashConst) >>> 0;
    return (value ^ (value >>> 16)) >>> 0;
  };
  const mix = (x, y) => {
    const r = (Math.imul(MIX_MULT_L, x) - Math.imul(MIX_MULT_R, y)) >>> 0;
    return (r ^ (r >>> 16)) >>> 0;
  };
  const pool = new Array(POOL_SIZE);
  for (let i = 0; i < POOL_SIZE; i++) pool[i] = hashmix(i < words.length ? words[i] : 0);
  for (let src = 0; src < POOL_SIZE; src++) {
    for (let dst = 0; dst < POOL_SIZE; dst++) {
      if (src !== dst) pool[dst] = mix(pool[dst], hashmix(pool[src]));
    }
  }
  for (let src = POOL_SIZE; src < words.length; src++) {
    for (let dst = 0; dst < POOL_SIZE; dst++) pool[dst] = mix(pool[dst], hashmix(words[src]));
  }
  const out = [];
  let hc = INIT_B;
  for (let i = 0; i < nWords; i++) {
    let v = (pool[i % POOL_SIZE] ^ hc) >>> 0;
    hc = Math.imul(hc, MULT_B) >>> 0;
    v = Math.imul(v, hc) >>> 0;
    out.push((v ^ (v >>> 16)) >>> 0);
  }
  return out;
}

// numpy's PCG64 bit generator (pcg64.h): 128-bit LCG, XSL-RR output; next32 hands out a 64-bit
// draw's low half first and keeps the high half for the next call (has_uint32 / uinteger).
// numpy's _coerce_to_uint32_array: an integer >= 0 becomes its 32-bit words, least significant first
// (0 is [0]); a list, the concatenation of its elements' words ([seed, 1]: seed's words, then 1).
function uint32Words(entropy) {
  if (Array.isArray(entropy)) return entropy.flatMap(uint32Words);
  let x = BigInt(entropy);
  const words = [];
  do {
    words.push(Number(x & 0xffffffffn));
    x >>= 32n;
  } while (x > 0n);
  return words;
}

export class PCG64 {
  constructor(entropy) {
    const words = uint32Words(entropy);
    const s = seedSequenceState(words, 8);
    // generate_state(4, uint64): pairs of uint32, low word first; pcg64_set_seed takes [0] as the high half
    const w64 = [0, 2, 4, 6].map((i) => BigInt(s[i]) | (BigInt(s[i + 1]) << 32n));
    const initstate = (w64[0] << 64n) | w64[1];
    const initseq = (w64[2] << 64n) | w64[3];
    // pcg_setseq_128_srandom_r
    this.inc = ((initseq << 1n) | 1n) & MASK128;
    this.state = 0n;
    this.step();
    this.state = (this.state + initstate) & MASK128;
    this.step();
    this.hasUint32 = false;
    this.uinteger = 0;
  }

  step() {
    this.state = (this.state * PCG_MULT + this.inc) & MASK128;
  }

  nextUint64() {
    this.step();
    const hi = this.state >> 64n;
    const x = (hi ^ this.state) & MASK64;
    const rot = hi >> 58n;
    return ((x >> rot) | (x << ((64n - rot) & 63n))) & MASK64;
  }

  nextUint32() {
    if (this.hasUint32) {
      this.hasUint32 = false;
      return this.uinteger;
    }
    const next = this.nextUint64();
    this.hasUint32 = true;
    this.uinteger = Number(next >> 32n);
    return Number(next & 0xffffffffn);
  }

  // numpy's next_float: 24 random bits, exact in float32, in [0, 1)
  nextFloat() {
    return (this.nextUint32() >>> 8) * (1.0 / 16777216.0);
  }

  // numpy's random_standard_normal_f (distributions.c), each float operation rounded as C does
  standardNormalF() {
    for (;;) {
      const r = this.nextUint32();
      const idx = r & 0xff;
      const sign = (r >>> 8) & 0x1;
      const rabs = (r >>> 9) & 0x007fffff;
      let x = fround(rabs * WI_FLOAT[idx]);
      if (sign) x = -x;
      if (rabs < KI_FLOAT[idx]) return x; // 99.3% of draws
      if (idx === 0) {
        for (;;) { // the tail beyond r, by Marsaglia's exponential rejection; 1 - U avoids log(0)
          const xx = fround(-NOR_INV_R_F * log1pf(-this.nextFloat()));
          const yy = -log1pf(-this.nextFloat());
          if (fround(yy + yy) > fround(xx * xx)) {
            return (rabs >>> 8) & 0x1 ? -fround(NOR_R_F + xx) : fround(NOR_R_F + xx);
          }
        }
      }
      // a wedge: float on the left, exp in double (C promotes at -0.5 * x)
      const f = fround(fround(fround(FI_FLOAT[idx - 1] - FI_FLOAT[idx]) * this.nextFloat()) + FI_FLOAT[idx]);
      if (f < Math.exp(-0.5 * x * x)) return x;
    }
  }
}

// C's log1pf, which numpy's tail branch calls: not Math.log1p rounded to float, since glibc's log1pf (2.36,
// Debian 12; the classic fdlibm float code) differs from the correctly rounded value on ~7% of inputs.
// This is fdlibm's s_log1pf.c (Sun Microsystems, 1993: "Permission to use, copy, modify, and distribute
// this software is freely granted, provided that this notice is preserved"), each float operation
// rounded with fround; checked equal to glibc's on all 2**24 inputs makeNoise can pass (-k / 2**24).
const F32 = new Float32Array(1);
const I32 = new Int32Array(F32.buffer);
const floatBits = (x) => ((F32[0] = x), I32[0]);
const bitsFloat = (i) => ((I32[0] = i), F32[0]);
const LN2_HI = fround(6.9313812256e-01), LN2_LO = fround(9.0580006145e-06);
const LP = [6.6666668653e-01, 4.0000000596e-01, 2.8571429849e-01, 2.2222198546e-01,
  1.8183572590e-01, 1.5313838422e-01, 1.4798198640e-01].map(fround);
const TWO_THIRDS_F = fround(0.66666666666666666);

function log1pf(x) {
  const hx = floatBits(x);
  const ax = hx & 0x7fffffff;
  let k = 1, f = 0, c = 0, hu = 0;
  if (hx < 0x3ed413d7) { // x < 0.41422
    if (ax >= 0x3f800000) return x === -1 ? -Infinity : NaN; // x <= -1
    if (ax < 0x31000000) { // |x| < 2**-29
      return ax < 0x24800000 ? x : fround(x - fround(fround(x * x) * 0.5));
    }
    if (hx > 0 || hx <= (0xbe95f61f | 0)) { k = 0; f = x; hu = 1; } // -0.2929 < x < 0.41422
  }
  if (hx >= 0x7f800000) return x + x;
  if (k !== 0) {
    let u;
    if (hx < 0x5a000000) {
      u = fround(1 + x);
      hu = floatBits(u);
      k = (hu >> 23) - 127;
      c = k > 0 ? fround(1 - fround(u - x)) : fround(x - fround(u - 1)); // correction term
      c = fround(c / u);
    } else {
      u = x;
      hu = floatBits(u);
      k = (hu >> 23) - 127;
      c = 0;
    }
    hu &= 0x007fffff;
    if (hu < 0x3504f7) {
      u = bitsFloat(hu | 0x3f800000); // normalize u
    } else {
      k += 1;
      u = bitsFloat(hu | 0x3f000000); // normalize u/2
      hu = (0x00800000 - hu) >> 2;
    }
    f = fround(u - 1);
  }
  const hfsq = fround(fround(0.5 * f) * f);
  if (hu === 0) { // |f| < 2**-20
    if (f === 0) return k === 0 ? 0 : fround(fround(k * LN2_HI) + fround(c + fround(k * LN2_LO)));
    const R = fround(hfsq * fround(1 - fround(TWO_THIRDS_F * f)));
    if (k === 0) return fround(f - R);
    return fround(fround(k * LN2_HI) - fround(fround(R - fround(fround(k * LN2_LO) + c)) - f));
  }
  const s = fround(f / fround(2 + f));
  const z = fround(s * s);
  let R = LP[6];
  for (let i = 5; i >= 0; i--) R = fround(LP[i] + fround(z * R));
  R = fround(z * R);
  if (k === 0) return fround(f - fround(hfsq - fround(s * fround(hfsq + R))));
  return fround(fround(k * LN2_HI) -
    fround(fround(hfsq - fround(fround(s * fround(hfsq + R)) + fround(fround(k * LN2_LO) + c))) - f));
}

// Python's NormalDist().inv_cdf: Wichura's AS241, transcribed from CPython's statistics module. The
// double can differ from Python's by an ulp or two (Math.log is not libm's log); the float32 that
// makeNoise uses agrees unless the double lies within those ulps of a float32 rounding edge (~1e-8).
function normalInvCdf(p) {
  if (!(p > 0 && p < 1)) throw new Error("p must be in the range 0.0 < p < 1.0");
  const q = p - 0.5;
  let num, den;
  if (Math.abs(q) <= 0.425) {
    const r = 0.180625 - q * q;
    num = (((((((2.5090809287301226727e+3 * r +
                 3.3430575583588128105e+4) * r +
                 6.7265770927008700853e+4) * r +
                 4.5921953931549871457e+4) * r +
                 1.3731693765509461125e+4) * r +
                 1.9715909503065514427e+3) * r +
                 1.3314166789178437745e+2) * r +
                 3.3871328727963666080e+0) * q;
    den = (((((((5.2264952788528545610e+3 * r +
                 2.8729085735721942674e+4) * r +
                 3.9307895800092710610e+4) * r +
                 2.1213794301586595867e+4) * r +
                 5.3941960214247511077e+3) * r +
                 6.8718700749205790830e+2) * r +
                 4.2313330701600911252e+1) * r +
                 1.0);
    return num / den;
  }
  let r = q <= 0.0 ? p : 1.0 - p;
  r = Math.sqrt(-Math.log(r));
  if (r <= 5.0) {
    r = r - 1.6;
    num = (((((((7.7454501427834140764e-4 * r +
                 2.2723844989269184583e-2) * r +
                 2.4178072517745061177e-1) * r +
                 1.2704582524523683826e+0) * r +
                 3.6478483247632046050e+0) * r +
                 5.7694972214606914055e+0) * r +
                 4.6303378461565452959e+0) * r +
                 1.4234371107496835773e+0);
    den = (((((((1.0507500716444168432e-9 * r +
                 5.4759380849953449460e-4) * r +
                 1.5198666563616457197e-2) * r +
                 1.4810397642748007459e-1) * r +
                 6.8976733498510000455e-1) * r +
                 1.6763848301838038494e+0) * r +
                 2.0531916266377588219e+0) * r +
                 1.0);
  } else {
    r = r - 5.0;
    num = (((((((2.0103343992922881327e-7 * r +
                 2.7115555687434875781e-5) * r +
                 1.2426609473880784386e-3) * r +
                 2.6532189526576123093e-2) * r +
                 2.9656057182850489123e-1) * r +
                 1.7848265399172913358e+0) * r +
                 5.4637849111641143699e+0) * r +
                 6.6579046435011037772e+0);
    den = (((((((2.0442631033899397856e-15 * r +
                 1.4215117583164458887e-7) * r +
                 1.8463183175100546818e-5) * r +
                 7.8686913114561329059e-4) * r +
                 1.4875361290850614852e-2) * r +
                 1.3692988092273580531e-1) * r +
                 5.9983220655588793769e-1) * r +
                 1.0);
  }
  const x = num / den;
  return q < 0.0 ? -x : x;
}

// gantool.noise.gaussian_bound: |z| beyond this is redrawn (float64; makeNoise compares in float32)
export function gaussianBound(t) {
  return t >= 1 ? Infinity : normalInvCdf((1 + t) / 2);
}

// Python's repr, enough for the error messages to read as Python's do
function repr(v) {
  if (typeof v === "string") return `'${v}'`;
  if (typeof v === "bigint") return String(v);
  if (v === true) return "True";
  if (v === false) return "False";
  if (v === null || v === undefined) return "None";
  return String(v);
}

function check(seed, n, latentDim, distribution, truncation) {
  // the order and wording of gantool.noise's ValueErrors (make_noise: _check, then check_truncation)
  if (!DISTRIBUTIONS.includes(distribution)) {
    throw new Error(`unknown noise distribution ${repr(distribution)}; allowed: ${DISTRIBUTIONS.join(", ")}`);
  }
  if (!Number.isInteger(n) || !Number.isInteger(latentDim)) {
    throw new Error(`n and latent_dim must be integers, got n=${repr(n)}, latent_dim=${repr(latentDim)}`);
  }
  if (n < 1 || latentDim < 1) {
    throw new Error(`n and latent_dim must be >= 1, got n=${n}, latent_dim=${latentDim}`);
  }
  if (typeof truncation !== "number" || !(truncation > 0 && truncation <= 1)) {
    throw new Error(`truncation must be a number in (0, 1], got ${repr(truncation)} (1: no truncation)`);
  }
  checkSeed(seed);
}

/**
 * A seed as numpy takes it: any integer >= 0, as a Number up to 2**53 - 1 (beyond, Numbers are not
 * exact integers) or a BigInt of any size. Throws with Python's Generator words otherwise.
 */
export function checkSeed(seed) {
  const isInt = (typeof seed === "number" && Number.isInteger(seed)) || typeof seed === "bigint";
  if (!isInt || seed < 0) throw new Error(`seed must be a non-negative integer, got ${repr(seed)}.`);
  if (typeof seed === "number" && !Number.isSafeInteger(seed)) {
    throw new Error(`seed ${seed} is above 2**53 - 1, where Numbers stop being exact integers; pass it as a BigInt.`);
  }
}

/**
 * z of n rows of latentDim, row-major float32, equal bit for bit to
 * gantool.noise.make_noise(seed, n, latentDim, distribution, truncation).
 */
export function makeNoise(seed, n, latentDim, distribution = "normal", truncation = 1.0) {
  check(seed, n, latentDim, distribution, truncation);
  const rng = new PCG64(seed);
  const size = n * latentDim;
  const z = new Float32Array(size);
  if (distribution === "normal") {
    for (let i = 0; i < size; i++) z[i] = rng.standardNormalF();
  } else {
    for (let i = 0; i < size; i++) z[i] = fround(fround(rng.nextFloat() * 2) - 1); // u *= 2; u -= 1
  }
  if (truncation === 1) return z;
  if (distribution === "uniform") {
    const t = fround(truncation);
    for (let i = 0; i < size; i++) z[i] = fround(z[i] * t);
    return z;
  }
  // gantool.noise.truncate: rows with a coordinate outside the bound, in row order, redraw those
  // coordinates from the second stream in blocks, keeping in order the draws within the bound
  const bound = fround(gaussianBound(truncation));
  let resample = null; // seeded only when some row needs it (seeding costs, draws nothing)
  for (let row = 0; row < n; row++) {
    const base = row * latentDim;
    let where = [];
    for (let j = 0; j < latentDim; j++) if (Math.abs(z[base + j]) > bound) where.push(j);
    if (where.length === 0) continue;
    resample ??= new PCG64([seed, TRUNCATION_STREAM]);
    while (where.length) {
      const blockSize = Math.trunc((where.length / truncation) * 1.5) + 8; // int(where.size / t * 1.5) + 8
      let kept = 0;
      for (let k = 0; k < blockSize; k++) {
        const x = resample.standardNormalF(); // the whole block is drawn, as numpy does
        if (kept < where.length && Math.abs(x) <= bound) z[base + where[kept++]] = x;
      }
      where = where.slice(kept);
    }
  }
  return z;
}

// numpy/random/src/distributions/ziggurat_constants.h: ki_float, wi_float, fi_float and the float tail
// constants, as the float32 bit patterns the C compiler makes of them (decimal literals parsed to
// double first could round differently).
const NOR_R_F = fround(3.6541528701782227); // ziggurat_nor_r_f (bits 0x4069dda4)
const NOR_INV_R_F = fround(0.27366122603416443); // ziggurat_nor_inv_r_f (bits 0x3e8c1d53)
const KI_FLOAT = new Uint32Array([
  0x007799ec, 0x00000000, 0x006045f5, 0x006d1aa8, 0x00728fb4, 0x007592af, 0x00777a5c, 0x0078ca38,
  0x0079bf6b, 0x007a7a35, 0x007b0d2f, 0x007b83d4, 0x007be597, 0x007c3788, 0x007c7d33, 0x007cb926,
  0x007ced48, 0x007d1b08, 0x007d437f, 0x007d678b, 0x007d87db, 0x007da4fc, 0x007dbf61, 0x007dd767,
  0x007ded5d, 0x007e0183, 0x007e1411, 0x007e2534, 0x007e3515, 0x007e43d5, 0x007e5193, 0x007e5e67,
  0x007e6a69, 0x007e75aa, 0x007e803e, 0x007e8a32, 0x007e9395, 0x007e9c72, 0x007ea4d5, 0x007eacc6,
  0x007eb44e, 0x007ebb75, 0x007ec243, 0x007ec8bc, 0x007ecee8, 0x007ed4cc, 0x007eda6b, 0x007edfcb,
  0x007ee4ef, 0x007ee9dc, 0x007eee94, 0x007ef31b, 0x007ef774, 0x007efba0, 0x007effa3, 0x007f037f,
  0x007f0736, 0x007f0aca, 0x007f0e3c, 0x007f118f, 0x007f14c4, 0x007f17dc, 0x007f1ada, 0x007f1dbd,
  0x007f2087, 0x007f233a, 0x007f25d7, 0x007f285d, 0x007f2ad0, 0x007f2d2e, 0x007f2f7a, 0x007f31b3,
  0x007f33dc, 0x007f35f3, 0x007f37fb, 0x007f39f3, 0x007f3bdc, 0x007f3db7, 0x007f3f84, 0x007f4145,
  0x007f42f8, 0x007f449f, 0x007f463a, 0x007f47ca, 0x007f494e, 0x007f4ac8, 0x007f4c38, 0x007f4d9d,
  0x007f4ef9, 0x007f504c, 0x007f5195, 0x007f52d5, 0x007f540d, 0x007f553d, 0x007f5664, 0x007f5784,
  0x007f589c, 0x007f59ac, 0x007f5ab5, 0x007f5bb8, 0x007f5cb3, 0x007f5da8, 0x007f5e96, 0x007f5f7e,
  0x007f605f, 0x007f613b, 0x007f6210, 0x007f62e0, 0x007f63aa, 0x007f646f, 0x007f652e, 0x007f65e8,
  0x007f669c, 0x007f674c, 0x007f67f6, 0x007f689c, 0x007f693c, 0x007f69d9, 0x007f6a70, 0x007f6b03,
  0x007f6b91, 0x007f6c1b, 0x007f6ca0, 0x007f6d21, 0x007f6d9e, 0x007f6e17, 0x007f6e8c, 0x007f6efc,
  0x007f6f68, 0x007f6fd1, 0x007f7035, 0x007f7096, 0x007f70f3, 0x007f714c, 0x007f71a1, 0x007f71f2,
  0x007f723f, 0x007f7289, 0x007f72cf, 0x007f7312, 0x007f7350, 0x007f738b, 0x007f73c3, 0x007f73f6,
  0x007f7427, 0x007f7453, 0x007f747c, 0x007f74a1, 0x007f74c3, 0x007f74e0, 0x007f74fb, 0x007f7511,
  0x007f7524, 0x007f7533, 0x007f753f, 0x007f7546, 0x007f754a, 0x007f754b, 0x007f7547, 0x007f753f,
  0x007f7534, 0x007f7524, 0x007f7511, 0x007f74f9, 0x007f74de, 0x007f74be, 0x007f749a, 0x007f7472,
  0x007f7445, 0x007f7414, 0x007f73df, 0x007f73a5, 0x007f7366, 0x007f7323, 0x007f72da, 0x007f728d,
  0x007f723a, 0x007f71e3, 0x007f7186, 0x007f7123, 0x007f70bb, 0x007f704d, 0x007f6fd9, 0x007f6f5f,
  0x007f6edf, 0x007f6e58, 0x007f6dcb, 0x007f6d37, 0x007f6c9c, 0x007f6bf9, 0x007f6b4f, 0x007f6a9c,
  0x007f69e2, 0x007f691f, 0x007f6854, 0x007f677f, 0x007f66a1, 0x007f65b8, 0x007f64c6, 0x007f63c8,
  0x007f62c0, 0x007f61ab, 0x007f608a, 0x007f5f5d, 0x007f5e21, 0x007f5cd8, 0x007f5b7f, 0x007f5a17,
  0x007f589e, 0x007f5713, 0x007f5575, 0x007f53c4, 0x007f51fe, 0x007f5022, 0x007f4e2f, 0x007f4c22,
  0x007f49fa, 0x007f47b6, 0x007f4553, 0x007f42cf, 0x007f4028, 0x007f3d5a, 0x007f3a64, 0x007f3741,
  0x007f33ed, 0x007f3065, 0x007f2ca4, 0x007f28a4, 0x007f245f, 0x007f1fce, 0x007f1aea, 0x007f15a9,
  0x007f1000, 0x007f09e4, 0x007f0346, 0x007efc16, 0x007ef43e, 0x007eeba8, 0x007ee237, 0x007ed7c8,
  0x007ecc2f, 0x007ebf37, 0x007eb09d, 0x007ea00a, 0x007e8d0d, 0x007e7710, 0x007e5d47, 0x007e3e93,
  0x007e1959, 0x007deb2c, 0x007db036, 0x007d6203, 0x007cf4b9, 0x007c4fd2, 0x007b3630, 0x0078d2d2,
]);
const WI_FLOAT = new Float32Array(new Uint32Array([
  0x34fa49dc, 0x32dc685f, 0x3312857a, 0x332be5ca, 0x33400fe7, 0x33511861, 0x33600269, 0x336d617b,
  0x33799241, 0x33826991, 0x3387a82a, 0x338c9535, 0x33913d14, 0x3395a972, 0x3399e1fe, 0x339decf6,
  0x33a1cf7c, 0x33a58dda, 0x33a92bab, 0x33acac05, 0x33b0118e, 0x33b35e93, 0x33b69515, 0x33b9b6d7,
  0x33bcc569, 0x33bfc22d, 0x33c2ae63, 0x33c58b25, 0x33c85975, 0x33cb1a3c, 0x33cdce4c, 0x33d07667,
  0x33d3133b, 0x33d5a56b, 0x33d82d8b, 0x33daac24, 0x33dd21b4, 0x33df8eb1, 0x33e1f388, 0x33e4509d,
  0x33e6a650, 0x33e8f4f8, 0x33eb3ce9, 0x33ed7e70, 0x33efb9d5, 0x33f1ef5e, 0x33f41f4a, 0x33f649d6,
  0x33f86f3c, 0x33fa8fb3, 0x33fcab6d, 0x33fec29c, 0x34006ab7, 0x34017208, 0x34027755, 0x34037ab3,
  0x34047c35, 0x34057bec, 0x340679eb, 0x34077642, 0x34087102, 0x34096a38, 0x340a61f5, 0x340b5846,
  0x340c4d39, 0x340d40db, 0x340e3338, 0x340f245d, 0x34101455, 0x3411032c, 0x3411f0ec, 0x3412dda0,
  0x3413c953, 0x3414b40e, 0x34159ddb, 0x341686c3, 0x34176ecf, 0x34185608, 0x34193c77, 0x341a2224,
  0x341b0716, 0x341beb56, 0x341cceeb, 0x341db1de, 0x341e9435, 0x341f75f7, 0x3420572c, 0x342137d9,
  0x34221807, 0x3422f7bc, 0x3423d6fd, 0x3424b5d2, 0x34259440, 0x3426724d, 0x34275001, 0x34282d5f,
  0x34290a70, 0x3429e737, 0x342ac3ba, 0x342ba000, 0x342c7c0e, 0x342d57e9, 0x342e3397, 0x342f0f1c,
  0x342fea7e, 0x3430c5c3, 0x3431a0ef, 0x34327c08, 0x34335713, 0x34343214, 0x34350d11, 0x3435e80f,
  0x3436c313, 0x34379e22, 0x34387940, 0x34395473, 0x343a2fbf, 0x343b0b2a, 0x343be6b8, 0x343cc26e,
  0x343d9e52, 0x343e7a68, 0x343f56b4, 0x3440333d, 0x34411007, 0x3441ed16, 0x3442ca71, 0x3443a81b,
  0x3444861b, 0x34456475, 0x3446432d, 0x3447224b, 0x344801d1, 0x3448e1c7, 0x3449c231, 0x344aa314,
  0x344b8476, 0x344c665c, 0x344d48cd, 0x344e2bcc, 0x344f0f61, 0x344ff391, 0x3450d862, 0x3451bdd9,
  0x3452a3fd, 0x34538ad4, 0x34547263, 0x34555ab2, 0x345643c6, 0x34572da7, 0x3458185a, 0x345903e8,
  0x3459f055, 0x345addaa, 0x345bcbee, 0x345cbb28, 0x345dab5f, 0x345e9c9b, 0x345f8ee5, 0x34608243,
  0x346176bf, 0x34626c61, 0x34636330, 0x34645b37, 0x3465547e, 0x34664f0e, 0x34674af2, 0x34684832,
  0x346946d9, 0x346a46f1, 0x346b4885, 0x346c4ba0, 0x346d504d, 0x346e5698, 0x346f5e8d, 0x34706838,
  0x347173a6, 0x347280e5, 0x34739001, 0x3474a10a, 0x3475b40e, 0x3476c91c, 0x3477e043, 0x3478f994,
  0x347a1520, 0x347b32f9, 0x347c5330, 0x347d75d9, 0x347e9b07, 0x347fc2ce, 0x348076a2, 0x34810d40,
  0x3481a54c, 0x34823ed2, 0x3482d9e0, 0x34837681, 0x348414c4, 0x3484b4b8, 0x3485566c, 0x3485f9ef,
  0x34869f52, 0x348746a6, 0x3487efff, 0x34889b70, 0x3489490d, 0x3489f8eb, 0x348aab22, 0x348b5fca,
  0x348c16fc, 0x348cd0d3, 0x348d8d6c, 0x348e4ce5, 0x348f0f60, 0x348fd4fe, 0x34909de5, 0x34916a3c,
  0x34923a2d, 0x34930de6, 0x3493e598, 0x3494c176, 0x3495a1bb, 0x349686a2, 0x3497706e, 0x34985f67,
  0x349953db, 0x349a4e20, 0x349b4e94, 0x349c559d, 0x349d63ac, 0x349e793e, 0x349f96dd, 0x34a0bd25,
  0x34a1ecc1, 0x34a32672, 0x34a46b14, 0x34a5bb9d, 0x34a71928, 0x34a884fb, 0x34aa008b, 0x34ab8d8d,
  0x34ad2e04, 0x34aee451, 0x34b0b34e, 0x34b29e74, 0x34b4aa06, 0x34b6db5c, 0x34b93948, 0x34bbccab,
  0x34bea170, 0x34c1c818, 0x34c5587e, 0x34c97705, 0x34ce5f70, 0x34d47ee4, 0x34dcc0fa, 0x34e9dda4,
]).buffer);
const FI_FLOAT = new Float32Array(new Uint32Array([
  0x3f800000, 0x3f7a2356, 0x3f75baa3, 0x3f71f88f, 0x3f6e9b7d, 0x3f6b8490, 0x3f68a24c, 0x3f65e99d,
  0x3f6352f6, 0x3f60d8e7, 0x3f5e775a, 0x3f5c2b2a, 0x3f59f1d4, 0x3f57c952, 0x3f55aff8, 0x3f53a45f,
  0x3f51a558, 0x3f4fb1df, 0x3f4dc914, 0x3f4bea33, 0x3f4a148e, 0x3f48478e, 0x3f4682aa, 0x3f44c56a,
  0x3f430f60, 0x3f416028, 0x3f3fb76a, 0x3f3e14d4, 0x3f3c781a, 0x3f3ae0f8, 0x3f394f30, 0x3f37c286,
  0x3f363ac5, 0x3f34b7bb, 0x3f333939, 0x3f31bf15, 0x3f304925, 0x3f2ed743, 0x3f2d694d, 0x3f2bff21,
  0x3f2a98a0, 0x3f2935ab, 0x3f27d627, 0x3f2679fa, 0x3f25210c, 0x3f23cb43, 0x3f22788a, 0x3f2128cc,
  0x3f1fdbf5, 0x3f1e91f1, 0x3f1d4aad, 0x3f1c0619, 0x3f1ac424, 0x3f1984be, 0x3f1847d8, 0x3f170d63,
  0x3f15d551, 0x3f149f94, 0x3f136c21, 0x3f123aeb, 0x3f110be5, 0x3f0fdf05, 0x3f0eb440, 0x3f0d8b8b,
  0x3f0c64dc, 0x3f0b4029, 0x3f0a1d69, 0x3f08fc92, 0x3f07dd9d, 0x3f06c081, 0x3f05a534, 0x3f048bb1,
  0x3f0373ee, 0x3f025de5, 0x3f01498f, 0x3f0036e4, 0x3efe4bbc, 0x3efc2ced, 0x3efa114e, 0x3ef7f8d4,
  0x3ef5e371, 0x3ef3d11b, 0x3ef1c1c7, 0x3eefb56a, 0x3eedabfa, 0x3eeba56b, 0x3ee9a1b5, 0x3ee7a0ce,
  0x3ee5a2ac, 0x3ee3a746, 0x3ee1ae93, 0x3edfb88c, 0x3eddc527, 0x3edbd45c, 0x3ed9e623, 0x3ed7fa75,
  0x3ed6114a, 0x3ed42a9a, 0x3ed2465f, 0x3ed06492, 0x3ece852b, 0x3ecca824, 0x3ecacd77, 0x3ec8f51d,
  0x3ec71f10, 0x3ec54b4a, 0x3ec379c5, 0x3ec1aa7c, 0x3ebfdd69, 0x3ebe1285, 0x3ebc49cd, 0x3eba833b,
  0x3eb8beca, 0x3eb6fc74, 0x3eb53c35, 0x3eb37e09, 0x3eb1c1ea, 0x3eb007d4, 0x3eae4fc2, 0x3eac99b1,
  0x3eaae59c, 0x3ea9337e, 0x3ea78354, 0x3ea5d51b, 0x3ea428cd, 0x3ea27e67, 0x3ea0d5e7, 0x3e9f2f47,
  0x3e9d8a84, 0x3e9be79b, 0x3e9a4689, 0x3e98a74a, 0x3e9709dc, 0x3e956e3a, 0x3e93d462, 0x3e923c51,
  0x3e90a604, 0x3e8f1178, 0x3e8d7eaa, 0x3e8bed97, 0x3e8a5e3e, 0x3e88d09a, 0x3e8744ab, 0x3e85ba6c,
  0x3e8431dc, 0x3e82aaf9, 0x3e8125c0, 0x3e7f445c, 0x3e7c4084, 0x3e793ff3, 0x3e7642a5, 0x3e734896,
  0x3e7051c1, 0x3e6d5e23, 0x3e6a6db8, 0x3e67807c, 0x3e64966d, 0x3e61af86, 0x3e5ecbc4, 0x3e5beb24,
  0x3e590da3, 0x3e56333d, 0x3e535bf0, 0x3e5087ba, 0x3e4db696, 0x3e4ae883, 0x3e481d7e, 0x3e455585,
  0x3e429094, 0x3e3fceab, 0x3e3d0fc7, 0x3e3a53e5, 0x3e379b04, 0x3e34e522, 0x3e32323d, 0x3e2f8254,
  0x3e2cd564, 0x3e2a2b6d, 0x3e27846d, 0x3e24e063, 0x3e223f4e, 0x3e1fa12c, 0x3e1d05fd, 0x3e1a6dc0,
  0x3e17d874, 0x3e154619, 0x3e12b6ad, 0x3e102a31, 0x3e0da0a5, 0x3e0b1a07, 0x3e089659, 0x3e06159a,
  0x3e0397ca, 0x3e011ceb, 0x3dfd49f6, 0x3df85ff9, 0x3df37be0, 0x3dee9dab, 0x3de9c55e, 0x3de4f2fa,
  0x3de02683, 0x3ddb5ffc, 0x3dd69f67, 0x3dd1e4ca, 0x3dcd3027, 0x3dc88184, 0x3dc3d8e5, 0x3dbf3650,
  0x3dba99cb, 0x3db6035c, 0x3db17309, 0x3dace8db, 0x3da864d8, 0x3da3e70a, 0x3d9f6f79, 0x3d9afe2f,
  0x3d969336, 0x3d922e9a, 0x3d8dd066, 0x3d8978a7, 0x3d852769, 0x3d80dcbd, 0x3d793161, 0x3d70b6aa,
  0x3d684978, 0x3d5fe9f0, 0x3d57983d, 0x3d4f5488, 0x3d471f01, 0x3d3ef7dc, 0x3d36df4e, 0x3d2ed592,
  0x3d26dae8, 0x3d1eef96, 0x3d1713e7, 0x3d0f482d, 0x3d078cc1, 0x3cffc40f, 0x3cf090d7, 0x3ce180cc,
  0x3cd294fa, 0x3cc3ce8e, 0x3cb52ed8, 0x3ca6b758, 0x3c9869c4, 0x3c8a481a, 0x3c78a952, 0x3c5d2469,
  0x3c420820, 0x3c275cb2, 0x3c0d2c91, 0x3be70b08, 0x3bb4f547, 0x3b8450f8, 0x3b2afcfa, 0x3aa5302e,
]).buffer);
