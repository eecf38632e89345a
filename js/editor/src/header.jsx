// The DAG view's header: name, status badge, progress, elapsed time, parameter values, failure.
import { useEffect, useState } from "react";

function formatSeconds(seconds) {
  if (seconds == null || Number.isNaN(seconds)) return "";
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  const m = Math.floor(seconds / 60);
  return `${m}m ${String(Math.floor(seconds % 60)).padStart(2, "0")}s`;
}

export function Header({ name, header }) {
  const status = header.status || "Not run";
  const done = header.done || 0;
  const total = header.total || 0;
  const [now, setNow] = useState(Date.now() / 1000);
  const live = status === "Executing" && header.start;
  useEffect(() => {
    if (!live) return undefined;
    const ticker = setInterval(() => setNow(Date.now() / 1000), 250);
    return () => clearInterval(ticker);
  }, [live]);
  const elapsed = live ? now - header.start : header.elapsed;
  return (
    <>
      <div className="jp-pipeline-header">
        <span className="jp-pipeline-name">{name}</span>
        <span className="jp-pipeline-badge" data-status={status}>{status}</span>
        <div className="jp-pipeline-progress" title={`${done} of ${total} steps done`}>
          <div className="jp-pipeline-progress-fill" style={{ width: `${total ? (100 * done) / total : 0}%` }} />
        </div>
        <span className="jp-pipeline-count">{done}/{total} steps</span>
        <span className="jp-pipeline-elapsed">{formatSeconds(elapsed)}</span>
        <span className="jp-pipeline-params">
          {Object.entries(header.parameters || {}).map(([k, v]) => <code key={k} className="jp-pipeline-param">{k}={v}</code>)}
        </span>
        {header.dashboard && <a className="jp-pipeline-dashboard" href={header.dashboard} target="_blank" rel="noopener"
          title="the Dask cluster's dashboard">Dask dashboard ↗</a>}
      </div>
      {header.failure && <div className="jp-pipeline-failure" role="alert">Failure reason: {header.failure}</div>}
    </>
  );
}
