/**
 * The page that runs tests/_device_checks.ts in a browser, on the tfjs
 * backend named by `?backend=` (webgl or webgpu); its results go to
 * `globalThis.deviceChecks` for tests/tfjs_device_page_test.ts to read.
 *
 * @module
 */

import "@tensorflow/tfjs-backend-cpu";
import "@tensorflow/tfjs-backend-webgl";
import "@tensorflow/tfjs-backend-webgpu";
import * as tf from "@tensorflow/tfjs-core";
import { DEVICE_CHECKS } from "./_device_checks.ts";

/** What the page reports. */
export interface DeviceCheckReport {
  /** The backend asked for. */
  readonly backend: string;
  /** Why the checks did not run, when they could not. */
  readonly skipped: string | null;
  /** Each check's name and error (null: passed). */
  readonly results: { name: string; error: string | null }[];
  readonly done: boolean;
}

const backend = new URLSearchParams(location.search).get("backend") ?? "webgl";
const report: DeviceCheckReport = { backend, skipped: null, results: [], done: false };
(globalThis as unknown as { deviceChecks: DeviceCheckReport }).deviceChecks = report;

tf.env().set("PROD", true);
if (!(await tf.setBackend(backend).catch(() => false))) {
  Object.assign(report, {
    skipped: `tfjs could not start its ${backend} backend here`,
    done: true,
  });
} else {
  for (const check of DEVICE_CHECKS) {
    try {
      await check.run(backend);
      report.results.push({ name: check.name, error: null });
    } catch (error) {
      report.results.push({ name: check.name, error: String((error as Error)?.stack ?? error) });
    }
  }
  Object.assign(report, { done: true });
}
