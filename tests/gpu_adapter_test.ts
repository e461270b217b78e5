import assert from "node:assert/strict";
import { probeGpuAdapter } from "../gpu/adapter.ts";

const fakeGpu = (adapter: unknown) => ({ requestAdapter: () => Promise.resolve(adapter) });

Deno.test("probeGpuAdapter() tells software adapters from real ones", async () => {
  const llvmpipe = await probeGpuAdapter(fakeGpu({
    info: {
      vendor: "65541",
      architecture: "",
      device: "0",
      description: "llvmpipe (LLVM 15.0.6, 256 bits)",
    },
  }));
  assert.deepEqual(llvmpipe, {
    available: true,
    fallback: true,
    description: "65541 / 0 / llvmpipe (LLVM 15.0.6, 256 bits)",
  });
  const flagged = await probeGpuAdapter(
    fakeGpu({ info: { vendor: "x", isFallbackAdapter: true } }),
  );
  assert.equal(flagged.fallback, true);
  const legacy = await probeGpuAdapter(fakeGpu({ isFallbackAdapter: true, info: { vendor: "y" } }));
  assert.equal(legacy.fallback, true);
  const h100 = await probeGpuAdapter(fakeGpu({
    info: {
      vendor: "nvidia",
      architecture: "hopper",
      device: "0x2330",
      description: "NVIDIA H100",
    },
  }));
  assert.deepEqual(h100, {
    available: true,
    fallback: false,
    description: "nvidia / hopper / 0x2330 / NVIDIA H100",
  });
});

Deno.test("probeGpuAdapter() says why there is no adapter", async () => {
  assert.deepEqual(await probeGpuAdapter(fakeGpu(null)), {
    available: false,
    fallback: false,
    description: "no WebGPU adapter was granted",
  });
  const failing = { requestAdapter: () => Promise.reject(new Error("driver missing")) };
  assert.equal(
    (await probeGpuAdapter(failing)).description,
    "the adapter request failed: driver missing",
  );
});

Deno.test("probeGpuAdapter() on this machine never calls a software adapter real", async () => {
  const report = await probeGpuAdapter();
  if (report.available && /llvmpipe|lavapipe|swiftshader/i.test(report.description)) {
    assert.equal(report.fallback, true);
  }
});
