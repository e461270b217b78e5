import assert from "node:assert/strict";
import { decayGroups, DecoupledLionW, type Parameter, ParameterStore } from "../mod.ts";

function model(): Parameter[] {
  const store = new ParameterStore();
  return [
    store.add("embed_tokens.weight", [8, 4]),
    store.add("layers.0.attn.weight", [4, 4]),
    store.add("layers.0.attn.bias", [4]),
    store.add("layers.0.LayerNorm.weight", [4]),
    store.add("layers.0.mlp.weight", [4, 4]),
    store.add("scale", []),
    store.add("head.weight", [2, 4]),
  ];
}

Deno.test("decayGroups() leaves vectors, scalars and bias/norm/embedding names undecayed", () => {
  const split = decayGroups(model(), { weightDecay: 0.1 });
  assert.deepEqual(split.decay, ["layers.0.attn.weight", "layers.0.mlp.weight", "head.weight"]);
  assert.deepEqual(split.noDecay, [
    "embed_tokens.weight",
    "layers.0.attn.bias",
    "layers.0.LayerNorm.weight",
    "scale",
  ]);
  const [decayed, notDecayed] = split.groups;
  assert.equal(decayed.weightDecay, 0.1);
  assert.equal(notDecayed.weightDecay, 0);
  assert.deepEqual(decayed.params.map((p) => p.name), split.decay);
  assert.deepEqual(notDecayed.params.map((p) => p.name), split.noDecay);
});

Deno.test("decayGroups() takes a RegExp or a predicate instead of the default rule", () => {
  const byName = decayGroups(model(), { weightDecay: 0.1, noDecay: /head/g });
  assert.deepEqual(byName.noDecay, ["head.weight"]); // the g flag does not skip names
  const byShape = decayGroups(model(), { weightDecay: 0.1, noDecay: (p) => p.size > 16 });
  assert.deepEqual(byShape.noDecay, ["embed_tokens.weight"]);
  assert.throws(() => decayGroups(model(), { weightDecay: 0.1, noDecay: "bias" as never }), {
    name: "TypeError",
    message:
      "Cannot split parameters as 'noDecay' must be a RegExp or a function: current value is string",
  });
});

Deno.test("decayGroups()'s groups train with decay on the first only, an empty group included", async () => {
  const store = new ParameterStore();
  const w = store.add("w", [2, 1], [1, 1]);
  const split = decayGroups([w], { weightDecay: 0.5 });
  assert.deepEqual(split.noDecay, []);
  await using opt = new DecoupledLionW(split.groups, {
    lr: 0.25,
    backend: "js",
    workers: 0,
    logger: null,
  });
  w.grad = [1, -1];
  await opt.step();
  // p · (1 - 0.5) - 0.25 · sign(g)
  assert.deepEqual([...w.data], [0.25, 0.75]);
});

Deno.test("decayGroups() refuses unknown keys and bad weight decays", () => {
  assert.throws(() => decayGroups(model(), { weight_decay: 0.1 } as never), {
    name: "TypeError",
    message:
      `Cannot split decay groups as 'options' has an unknown key "weight_decay": did you mean "weightDecay"? (known: weightDecay, noDecay)`,
  });
  for (const bad of [-1, NaN, Infinity]) {
    assert.throws(() => decayGroups(model(), { weightDecay: bad }), RangeError);
  }
  assert.throws(() => decayGroups(model(), { weightDecay: "0.1" } as never), TypeError);
  assert.throws(() => decayGroups(model(), null as never), /'options' must be an object/);
});
