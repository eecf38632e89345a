// The synced state of an Abalone-like pipeline, as the kernel's EditorWidget sends it
// (docs/editor-protocol.md): Graphviz positions in points, centre of each node, origin top-left.
const code = {
  AbaloneProcess: "import pandas as pd\ndf = pd.read_csv(input_data)\ntrain = df.sample(frac=0.7, random_state=0)\ntest = df.drop(train.index)\nvalidation = test.sample(frac=0.5, random_state=0)\n",
  AbaloneTrain: "from sklearn.linear_model import LinearRegression\nmodel = LinearRegression().fit(train.drop(columns='rings'), train.rings)\n",
  AbaloneEval: "pred = model.predict(test.drop(columns='rings'))\nmse = float(((pred - test.rings) ** 2).mean())\n",
  AbaloneMSECond: "mse <= mse_threshold\n",
  AbaloneRegisterModel: "",
  AbaloneCreateModel: "",
  AbaloneTransform: "",
  AbaloneMSEFail: "f'MSE {mse} above threshold'\n",
};
const node = (name, kind, shape, x, y, w, h, outputs, inputs, flags = {}) => ({
  name, kind, shape, label: `${name}\n${kind}\nSucceeded · 0000.00s`, x, y, w, h,
  code: code[name], flags: { kind, ...flags }, outputs, inputs, unknown: "", aws: "",
});

export const GRAPH = {
  width: 640, height: 560,
  nodes: [
    node("AbaloneProcess", "processing", "box", 300, 34, 160, 60, ["train", "test", "validation"], ["input_data"]),
    node("AbaloneTrain", "training", "box3d", 160, 138, 160, 60, ["model"], ["train"]),
    node("AbaloneEval", "processing", "box", 300, 242, 160, 60, ["mse"], ["model", "test"]),
    node("AbaloneMSECond", "condition", "hexagon", 300, 352, 300, 74, [], ["mse", "mse_threshold"],
      { if_steps: ["AbaloneRegisterModel", "AbaloneCreateModel"], else_steps: ["AbaloneMSEFail"] }),
    node("AbaloneRegisterModel", "register-model", "cylinder", 100, 470, 180, 64, [], ["model"],
      { model: "model", group: "AbaloneModels", approval_status: "PendingManualApproval" }),
    node("AbaloneCreateModel", "create-model", "component", 320, 470, 170, 60, ["model_handle"], ["model"], { model: "model" }),
    node("AbaloneMSEFail", "fail", "octagon", 535, 470, 170, 60, [], ["mse"]),
  ],
  edges: [
    { source: "AbaloneProcess", target: "AbaloneTrain", kind: "data", names: ["train"] },
    { source: "AbaloneProcess", target: "AbaloneEval", kind: "data", names: ["test"] },
    { source: "AbaloneTrain", target: "AbaloneEval", kind: "data", names: ["model"] },
    { source: "AbaloneEval", target: "AbaloneMSECond", kind: "data", names: ["mse"] },
    { source: "AbaloneMSECond", target: "AbaloneRegisterModel", kind: "True", names: [] },
    { source: "AbaloneMSECond", target: "AbaloneCreateModel", kind: "True", names: [] },
    { source: "AbaloneMSECond", target: "AbaloneMSEFail", kind: "False", names: [] },
    { source: "AbaloneTrain", target: "AbaloneRegisterModel", kind: "data", names: ["model"] },
    { source: "AbaloneTrain", target: "AbaloneCreateModel", kind: "order", names: [] },
  ],
};

const ok = (s) => ({ status: "Succeeded", label: `Succeeded · ${s}s` });
export const STATE = {
  name: "abalone",
  mode: "edit",
  source: "notebook",
  graph: GRAPH,
  parameters: [
    { name: "input_data", type: "String", default: "abalone.csv", enum: null },
    { name: "mse_threshold", type: "Float", default: 6.0, enum: null },
  ],
  steps: {
    AbaloneProcess: ok("0.41"), AbaloneTrain: ok("1.20"), AbaloneEval: ok("0.09"),
    AbaloneMSECond: { status: "Succeeded", label: "Succeeded · 0.01s", outcome: "True", outcome_text: "mse 4.6712 <= mse_threshold 6.0 → True" },
    AbaloneRegisterModel: { status: "Executing", label: "Executing" },
    AbaloneCreateModel: { status: "Pending", label: "Pending" },
    AbaloneMSEFail: { status: "NotRun", label: "Not run" },
  },
  header: { id: "exec-1", status: "Executing", total: 7, done: 4, start: 0, elapsed: 1.8, parameters: { mse_threshold: "6.0" }, failure: "" },
  kinds: [
    { kind: "processing", shape: "box", type: "Processing" },
    { kind: "training", shape: "box3d", type: "Training" },
    { kind: "condition", shape: "hexagon", type: "Condition" },
    { kind: "fail", shape: "octagon", type: "Fail" },
    { kind: "register-model", shape: "cylinder", type: "RegisterModel" },
    { kind: "create-model", shape: "component", type: "Model" },
    { kind: "transform", shape: "parallelogram", type: "Transform" },
  ],
  details: {},
  selected: "",
  can_undo: true,
  can_redo: false,
  cells: { revision: 0, cells: [], removed: [] },
};
STATE.legend = STATE.kinds.filter((k) => k.kind !== "transform");  // the kinds this graph draws
