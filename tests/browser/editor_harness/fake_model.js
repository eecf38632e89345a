// A fake anywidget model for the editor's browser test: get/set/on/off/send/save_changes, like
// anywidget's model in a notebook. It records what the view sends (`sent`, `saved`) and lets the
// test push kernel-side trait changes (`push`) and command replies (`reply`).
export class FakeModel {
  constructor(state) {
    this.state = { ...state };
    this.listeners = new Map();
    this.sent = [];
    this.saved = [];
  }
  get(name) { return this.state[name]; }
  set(name, value) {
    const old = this.state[name];
    this.state[name] = value;
    if (old !== value) this.emit(`change:${name}`, value);
  }
  on(event, callback) {
    if (!this.listeners.has(event)) this.listeners.set(event, new Set());
    this.listeners.get(event).add(callback);
  }
  off(event, callback) {
    if (!event) { this.listeners.clear(); return; }
    const set = this.listeners.get(event);
    if (!set) return;
    if (callback) set.delete(callback); else set.clear();
  }
  emit(event, ...args) {
    for (const callback of [...(this.listeners.get(event) || [])]) callback(...args);
  }
  send(content) {
    this.sent.push(JSON.parse(JSON.stringify(content)));
    if (this.kernel) this.kernel("send", content).then((out) => this.deliver(out));
  }
  save_changes() {
    this.saved.push({ selected: this.state.selected });
    if (this.kernel) this.kernel("sync", { selected: this.state.selected }).then((out) => this.deliver(out));
  }
  // With a kernel (the test's Python `Editor`, through a Playwright binding): its trait changes
  // arrive before its replies, as a notebook's comm delivers them; a poll brings later changes.
  connect(kernel) {
    this.kernel = kernel;
    const poll = () => kernel("poll", null).then((out) => { this.deliver(out); this.timer = setTimeout(poll, 100); });
    poll();
  }
  deliver(out) {
    if (!out) return;
    this.push(out.changes || {});
    for (const message of out.replies || []) this.reply(message);
  }
  // -- test side --------------------------------------------------------------------------
  push(changes) { for (const [name, value] of Object.entries(changes)) this.set(name, value); }
  reply(message) { this.emit("msg:custom", message, []); }
  ops() { return this.sent.map((c) => c.op); }
  listenerCount() { let n = 0; for (const s of this.listeners.values()) n += s.size; return n; }
}
