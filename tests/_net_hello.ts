// A job for `deno task net -- run` in CI: every rank sums its rank + 1 over
// MPI and checks the total, over TCP between the net's namespaces.
import { MpiCollective } from "../mpi/mod.ts";

const comm = await MpiCollective.init({ timeoutMs: 30_000 });
const sum = new Float64Array([comm.rank + 1]);
await comm.allReduceSum(sum);
const expected = (comm.worldSize * (comm.worldSize + 1)) / 2;
console.log(`rank ${comm.rank} of ${comm.worldSize}: sum ${sum[0]} (expected ${expected})`);
await comm.close();
if (sum[0] !== expected) Deno.exit(1);
