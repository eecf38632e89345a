import { useEffect, useRef, useState } from "react";

// A text the user edits before it counts (a flag's field, a parameter's cell, an AWS step's
// JSON): `commit` hands the draft to `onCommit` when it differs from the text last committed,
// and it counts as committed unless `onCommit` refuses it (returns false: it stays a draft).
// A new `value` (the kernel's; `key` says when it changed) replaces the draft; `reset` puts
// the committed text back (Escape).
export function useDraft(value, onCommit, key = value) {
  const [draft, setDraft] = useState(value);
  const committed = useRef(value);
  useEffect(() => { committed.current = value; setDraft(value); }, [key]);
  const commit = () => {
    if (draft === committed.current || onCommit(draft) === false) return;
    committed.current = draft;
  };
  return [draft, setDraft, commit, () => setDraft(committed.current)];
}
