// Test driver for export/web/noise.js: reads one JSON request on stdin, writes one JSON answer on stdout.
// {"cases": [[seed, n, latentDim, distribution, truncation], ...]} -> base64 of each float32 z (little-endian)
// or {"error": message}; "raw": [[entropy, count]] -> base64 of PCG64(entropy)'s first count uint64 draws;
// "bounds": [t, ...] -> base64 of gaussianBound(t) as float64 and of its float32.
import { makeNoise, gaussianBound, PCG64, NOISE_FUNCTION } from "../../export/web/noise.js";

// "big:DIGITS" is a BigInt seed (JSON has none), in a case or an entropy list
const big = (v) => (typeof v === "string" && v.startsWith("big:") ? BigInt(v.slice(4)) : Array.isArray(v) ? v.map(big) : v);
const b64 = (typed) => Buffer.from(typed.buffer, typed.byteOffset, typed.byteLength).toString("base64");
let input = "";
for await (const chunk of process.stdin) input += chunk;
const req = JSON.parse(input);
const out = { noise_function: NOISE_FUNCTION, cases: [], raw: [] };
for (const args of req.cases ?? []) {
  try {
    out.cases.push(b64(makeNoise(big(args[0]), ...args.slice(1))));
  } catch (e) {
    out.cases.push({ error: e.message });
  }
}
for (const [entropy, count] of req.raw ?? []) {
  const rng = new PCG64(big(entropy));
  const draws = new BigUint64Array(count);
  for (let i = 0; i < count; i++) draws[i] = rng.nextUint64();
  out.raw.push(b64(draws));
}
const ts = req.bounds ?? [];
out.bounds64 = b64(Float64Array.from(ts, gaussianBound));
out.bounds32 = b64(Float32Array.from(ts, gaussianBound));
process.stdout.write(JSON.stringify(out));
