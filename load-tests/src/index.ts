/**
 * `@trellis/load-tests`: k6 load tests whose thresholds are the model's budgets. `runLoad` runs one
 * scenario and writes its report; `runLoadOnStack` does it against a local stack's outputs (the CI
 * gate: `runLoadOnStack({ scenario: 'smoke', outputs, reportsDir })`).
 */
import type { ValidModel } from '@trellis/policy';
import { loadModel, runLoad, type RunLoadOptions, type RunLoadResult } from './run.ts';
import { targetFromStackOutputs } from './target.ts';

export { runLoad, loadModel, DEFAULT_MODEL, K6_SCRIPT } from './run.ts';
export { checkEnvironment } from './overrides.ts';
export type { RunLoadOptions, RunLoadResult } from './run.ts';
export { checkTarget, targetFromStackOutputs } from './target.ts';
export { percentile, podProbePlan, startPodProbe } from './pod-probe.ts';
export type { PodProbePlan, PodProbeSamples, RunningPodProbe } from './pod-probe.ts';
export type { LoadTarget, MeshTarget, EnvoyAdmin } from './target.ts';
export { scenarioNames } from './plan-types.ts';
export type { ScenarioName } from './plan-types.ts';
export { scenarioDefaults, parseScenario, parseDuration } from './scenarios.ts';
export { parseBudgetOverride } from './overrides.ts';
export type { ReportData } from './report.ts';
export { withStackCpu } from './stack-cpu.ts';
// The regression gate (docs/adr/0013-regression-gate-rank-test.md): the statistics, and the A/B runner.
export { runGateSelfCheck, selfCheckProblems } from './ab/self-check.ts';
export { runAb, AB_METRICS } from './ab/run.ts';
export type { AbResult, AbBlock, AbComparison, RunAbOptions } from './ab/run.ts';
export { startAbStack, withFaultDelay, floorBootstrap } from './ab/stack.ts';
export type { AbStack, ArmSpec, RunningArm } from './ab/stack.ts';
export { planRounds, comparisonPlan } from './gate/plan.ts';
export { DEFAULT_ALPHA, minAchievableP, minPairsFor, planBlocks } from './gate/plan.ts';
export type { Arm, Block, BlockOrder, BlockPlan, BlockPlanInput } from './gate/plan.ts';
export { compareSamples, judgeBlocks } from './gate/compare.ts';
export type {
  BlockObservation,
  GateMetric,
  GateOptions,
  GateVerdict,
  MetricOutcome,
  MetricVerdict,
} from './gate/compare.ts';
export { cpuMsPerRequest, floorAdjustedLatency } from './gate/samples.ts';
export type { FloorSamples } from './gate/samples.ts';
export { formatGateTable } from './gate/format.ts';
export { cliffsDelta, hodgesLehmann, mannWhitneyU } from './gate/stats.ts';
export type { Alternative, MwuMethod, MwuOptions, MwuResult } from './gate/stats.ts';

/** Options of {@link runLoadOnStack}: {@link RunLoadOptions} with stack outputs instead of a target. */
export interface StackRunOptions extends Omit<RunLoadOptions, 'target'> {
  /** `pulumi stack output --json --show-secrets` of the stack (the token forms are secrets). */
  outputs: Record<string, unknown>;
  /** Whose token. @default 'alice' */
  as?: string;
}

/**
 * Run a scenario against a local stack, e.g. the CI gate from the end-to-end suite:
 * `const { exitCode, reportDir } = await runLoadOnStack({ scenario: 'smoke', outputs, reportsDir })`,
 * then fail the test unless `exitCode === 0` (99: a budget was broken; see `<reportDir>/summary.md`).
 */
export function runLoadOnStack(o: StackRunOptions): Promise<RunLoadResult> {
  const { outputs, as, ...rest } = o;
  const model: ValidModel = loadModel(o.model);
  return runLoad({
    ...rest,
    model,
    target: targetFromStackOutputs(outputs, { model, ...(as ? { as } : {}) }),
  });
}
