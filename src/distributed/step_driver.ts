/**
 * How a step is driven. The optimizer prepares a step and books its result
 * ({@linkcode LocalStep}); a driver decides what happens around the engine
 * run: on one process nothing ({@linkcode LOCAL_STEP}), across ranks the
 * exchanges of data-parallel training (`DataParallelStep`). The optimizer
 * picks one driver at construction and never sees a rank.
 *
 * @module
 */

import type { Collective } from "./collective.ts";
import { type CollectiveOp, runOps, runOpsSync } from "./collective_ops.ts";
import type { StepRequest, StepResult } from "../engine/engine.ts";
import { scaleGradients } from "../kernels/kernel.ts";
import { DECIDED, decideFromWrites } from "../step/written_scan.ts";
import type { MetricPartials } from "../step/metrics.ts";
import type { PlannedParameter, StepPlan } from "../step/step_plan.ts";
import type { StepDecision } from "../step/step_decision.ts";

/** The optimizer's side of a step: what a driver calls. */
export interface LocalStep {
  /**
   * The engine's request for this step (the state of parameters taking their
   * first step started), or `undefined` when no parameter takes part.
   */
  prepare(metrics: boolean, maxGradNorm: number): StepRequest | undefined;
  /** Runs the request on the engine. */
  run(request: StepRequest): Promise<StepResult>;
  /** Runs the request on the engine before returning. */
  runSync(request: StepRequest): StepResult;
  /**
   * Books the result: state, iterations, metrics (from `partials` where the
   * driver reduced them itself), the report. Throws where the gate aborted.
   *
   * @returns Whether the update was applied.
   */
  finish(request: StepRequest, result: StepResult, partials?: MetricPartials): boolean;
  /** Steps applied so far. */
  iterations(): number;
}

/** What a step waits for: collectives across the ranks, or the engine running a request. */
export type StepWait =
  | { readonly ops: readonly CollectiveOp[] }
  | { readonly request: StepRequest };

/**
 * One step as a program: it yields what it waits for and is resumed with
 * the engine's result (or nothing, after collectives). {@linkcode runStep}
 * and {@linkcode runStepSync} run it, so a strategy is written once for
 * `step()` and `stepSync()`.
 */
export type StepProgram = Generator<StepWait, void, StepResult>;

/** A strategy: how a step runs around the engine, and what only it knows about the state. */
export interface StepDriver {
  /** One step, as a program. */
  program(local: LocalStep, metrics: boolean, maxGradNorm: number): StepProgram;
  /** The ranks the program's collectives run on, where it has any. */
  readonly collective: Collective | undefined;
  /** Zeroes the exp_avg of the parameters taking their first step (this rank's part, where state is sharded). */
  startState(plan: StepPlan, fresh: readonly PlannedParameter[]): void;
  /** The exp_avg elements this process keeps, where that is not every stepped parameter's. */
  readonly stateElements: number | undefined;
  /** Why the state cannot be read here now (it is spread over the ranks), or `undefined`. */
  readonly stateAway: string | undefined;
  /** Brings the state back where it is spread over the ranks. */
  pullState(): Promise<void>;
  /** A state dict was loaded: every rank holds the whole state again. */
  stateLoaded(): void;
}

/**
 * The drive loop, written once: resumes `program` with what each wait
 * gives, going on at once where `settle` answers synchronously and after
 * the promise where it does not.
 */
function drive(
  program: StepProgram,
  settle: (wait: StepWait) => StepResult | undefined | Promise<StepResult | undefined>,
): void | Promise<void> {
  const resume = (given: StepResult | undefined): void | Promise<void> => {
    let next = program.next(given as StepResult);
    while (!next.done) {
      const got = settle(next.value);
      if (got instanceof Promise) return got.then(resume);
      next = program.next(got as StepResult);
    }
  };
  return resume(undefined);
}

/**
 * Runs one step of `driver`: collectives awaited, the engine's step awaited.
 *
 * @param driver The strategy.
 * @param local The optimizer's side.
 * @param metrics Whether the step computes the metrics.
 * @param maxGradNorm The clipping norm (Infinity: none).
 */
export async function runStep(
  driver: StepDriver,
  local: LocalStep,
  metrics: boolean,
  maxGradNorm: number,
): Promise<void> {
  const { collective } = driver;
  await drive(
    driver.program(local, metrics, maxGradNorm),
    (wait) =>
      "ops" in wait ? runOps(collective!, wait.ops).then(() => undefined) : local.run(wait.request),
  );
}

/**
 * Runs one step of `driver` before returning: blocking collectives, the
 * engine's synchronous step.
 *
 * @param driver The strategy.
 * @param local The optimizer's side.
 * @param metrics Whether the step computes the metrics.
 * @param maxGradNorm The clipping norm (Infinity: none).
 */
export function runStepSync(
  driver: StepDriver,
  local: LocalStep,
  metrics: boolean,
  maxGradNorm: number,
): void {
  const { collective } = driver;
  void drive(
    driver.program(local, metrics, maxGradNorm),
    (wait) => {
      if (!("ops" in wait)) return local.runSync(wait.request);
      runOpsSync(collective!, wait.ops);
      return undefined;
    },
  );
}

/** The driver on one process: the engine runs the step, decided from the writes' scans where it can. */
export const LOCAL_STEP: StepDriver = Object.freeze({
  *program(local: LocalStep, metrics: boolean, maxGradNorm: number): StepProgram {
    const request = local.prepare(metrics, maxGradNorm);
    if (request === undefined) return;
    const next = decidedRun(request, decideFromWrites(request.gate, request.plan));
    local.finish(
      request,
      "result" in next ? next.result : next.complete(yield { request: next.run }),
    );
  },
  collective: undefined,
  startState(_plan: StepPlan, fresh: readonly PlannedParameter[]): void {
    for (const { slots } of fresh) slots.expAvgView.fill(0);
  },
  stateElements: undefined,
  stateAway: undefined,
  pullState: (): Promise<void> => Promise.resolve(),
  stateLoaded(): void {},
});

/**
 * A step's run where its gradients were scanned before it (as they were
 * written, `written_scan.ts`, or averaged across the ranks): decided from
 * those sums, and run without the engine's scan, the result carrying the
 * decision and the sums as a scan would have; a refused step does not run
 * at all. Without them, the request as it is.
 *
 * @param request The step's request.
 * @param decided The decision and the sums it was taken from, or `undefined`.
 * @returns The result of a step that does not run, or the request to run and how to complete its result.
 */
export function decidedRun(
  request: StepRequest,
  decided: { readonly gradSquares: Float64Array; readonly decision: StepDecision } | undefined,
):
  | { readonly result: StepResult }
  | { readonly run: StepRequest; readonly complete: (result: StepResult) => StepResult } {
  if (decided === undefined) return { run: request, complete: (result) => result };
  const { decision, gradSquares } = decided;
  if (decision.action !== "update") return { result: { decision, gradSquares, partials: null } };
  return {
    run: { ...request, groups: scaleGradients(request.groups, decision.gradScale), gate: DECIDED },
    complete: (result) => ({ ...result, decision, gradSquares }),
  };
}
