// The anywidget model as React state, and the command channel to the kernel.
import { useCallback, useSyncExternalStore } from "react";

export function useTrait(model, name) {
  const subscribe = useCallback((callback) => {
    model.on(`change:${name}`, callback);
    return () => model.off(`change:${name}`, callback);
  }, [model, name]);
  return useSyncExternalStore(subscribe, () => model.get(name));
}

// Commands: `model.send({id, op, ...})`, one reply `{reply: id, ok, error?, confirm?, ...}`
// through `msg:custom`. Ids start at a random base so two views of one model never share one.
export function makeClient(model) {
  let next = Math.floor(Math.random() * 2 ** 20) * 2 ** 20 + 1;
  const pending = new Map();
  const onMessage = (msg) => {
    if (!msg || msg.reply == null || !pending.has(msg.reply)) return;
    const resolve = pending.get(msg.reply);
    pending.delete(msg.reply);
    resolve(msg);
  };
  model.on("msg:custom", onMessage);
  return {
    send(op, fields = {}) {
      const id = next++;
      return new Promise((resolve) => {
        pending.set(id, resolve);
        model.send({ id, op, ...fields });
      });
    },
    close() {
      model.off("msg:custom", onMessage);
      pending.clear();
    },
  };
}
