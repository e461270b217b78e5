import assert from "node:assert/strict";
import { diagnosticsOf, isTfjsTypeReference } from "../scripts/doc_lint.ts";

const TFJS_REFERENCE =
  `error[private-type-ref]: public type 'DecoupledLionWOptimizer' references private type 'Optimizer'
   --> /work/tfjs/decoupled_lionw_optimizer.ts:152:1
    | 
152 | export class DecoupledLionWOptimizer extends tf.Optimizer {
    | ^
    = hint: make the referenced type public or remove the reference
    | 
 37 | export declare abstract class Optimizer extends Serializable {
    | - this is the referenced type
    | 
`;
const LOCAL_REFERENCE =
  `error[private-type-ref]: public type 'lionw' references private type 'Tensor'
   --> /work/tfjs/x.ts:3:1
    | 
  3 | export function lionw(t: Tensor): void {}
    | ^
    = hint: make the referenced type public or remove the reference
    | 
  1 | interface Tensor {}
    | - this is the referenced type
    | 
`;
const OTHER_PACKAGE =
  `error[private-type-ref]: public type 'lionw' references private type 'Sequential'
   --> /work/tfjs/x.ts:3:1
    | 
  3 | export function lionw(model: tfl.Sequential): void {}
    | ^
    = hint: make the referenced type public or remove the reference
    | 
 12 | export declare class Sequential extends LayersModel {
    | - this is the referenced type
    | 
`;
const MISSING_DOC = `error[missing-jsdoc]: exported symbol is missing JSDoc documentation
   --> /work/src/x.ts:1:1
`;

Deno.test("doc:lint lets through only references to the tfjs-core types, as tfjs-core declares them", () => {
  const diagnostics = diagnosticsOf(
    `${TFJS_REFERENCE}\n${LOCAL_REFERENCE}\n${OTHER_PACKAGE}\n${MISSING_DOC}\nerror: Found 4 errors.`,
  );
  assert.equal(diagnostics.length, 4);
  // only the five tfjs-core types: another package's type (tfjs-layers') is not let through
  assert.deepEqual(diagnostics.map(isTfjsTypeReference), [true, false, false, false]);
  // a local type that happens to be named like a tfjs one is not let through
  assert.equal(isTfjsTypeReference(diagnostics[1]!), false);
});
