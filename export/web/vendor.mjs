// `npm run vendor`: copy the three onnxruntime-web files the page loads (the WebAssembly build's module,
// its worker glue and its binary) from node_modules/ into ./ort/, so the folder works offline without
// node_modules. gantool.js looks in ./ort/ first.
import { copyFileSync, mkdirSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "node_modules", "onnxruntime-web", "dist");
const FILES = ["ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm"];
if (!existsSync(dist)) {
  console.error("node_modules/onnxruntime-web is missing. Note: run `npm ci` first.");
  process.exit(1);
}
mkdirSync(join(here, "ort"), { recursive: true });
for (const f of FILES) copyFileSync(join(dist, f), join(here, "ort", f));
console.log(`copied ${FILES.join(", ")} into ./ort/`);
