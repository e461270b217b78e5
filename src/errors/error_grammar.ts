/**
 * The grammar every entry point's messages share, public for the adapters
 * (`tfjs/`, `mpi/`): how a message shows a value (`formatValue`), and the
 * unknown-key rule with its closest known name (`checkKnownKeys`,
 * `closestName`). A module of its own at the bottom of `src/`, so that an
 * adapter that only needs the grammar (the `./mpi` entry) loads nothing else.
 *
 * @module
 */

export { formatValue } from "../_internal/format.ts";
export { checkKnownKeys, closestName } from "../_internal/validate.ts";
