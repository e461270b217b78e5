/**
 * Child process of gpujs_backend_test.ts: builds an optimizer with
 * `backend: "auto"` in a runtime made to look like another machine, and
 * prints its choice as JSON, with whether the WebGPU adapter was asked for.
 *
 * - "hardware-gpu": `navigator.gpu` offers a hardware adapter;
 * - "no-relaxed-simd": WebAssembly validates no relaxed SIMD (Node 20's V8):
 *   a module exporting `relaxed_madd_is_fused` (the relaxed build) fails;
 * - "no-simd": WebAssembly validates nothing of the kernel's.
 */

const variant = Deno.args[0];
let adapterRequests = 0;
if (variant === "hardware-gpu") {
  const adapter = { info: { vendor: "nvidia", device: "NVIDIA H100 80GB HBM3" } };
  Object.defineProperty(navigator, "gpu", {
    value: {
      requestAdapter: () => {
        adapterRequests++;
        return Promise.resolve(adapter);
      },
    },
  });
} else if (variant === "no-relaxed-simd") {
  const validate = WebAssembly.validate;
  const marker = new TextEncoder().encode("relaxed_madd_is_fused");
  const hasMarker = (bytes: Uint8Array) =>
    bytes.some((_, i) => marker.every((b, j) => bytes[i + j] === b));
  WebAssembly.validate = (bytes) =>
    !hasMarker(new Uint8Array(bytes as ArrayBuffer)) && validate(bytes);
} else if (variant === "no-simd") {
  WebAssembly.validate = () => false;
}

const { DecoupledLionW, ParameterStore } = await import("../mod.ts");
const w = new ParameterStore().add("w", [2 ** 19]);
await using opt = new DecoupledLionW([w], { workers: 0, logger: null });
const choice = await opt.ready();
w.ensureGrad().fill(1);
await opt.step();
console.log(JSON.stringify({ choice, backend: opt.backend, adapterRequests }));
