// The last run's details of a step: the DAG view's panel (`data-details-for`), in React.
function ValueTable({ items }) {
  return (
    <table className="jp-pipeline-values"><tbody>
      {items.map((item) => (
        <tr key={item.name}>
          <th>{item.name}</th>
          <td>
            <div className="jp-pipeline-type">{[item.type, item.summary, item.from && `from ${item.from}`].filter(Boolean).join(" · ")}</div>
            <div className="jp-pipeline-preview">
              {item.html ? <div dangerouslySetInnerHTML={{ __html: item.html }} /> : item.text ? <pre>{item.text}</pre> : null}
            </div>
          </td>
        </tr>
      ))}
    </tbody></table>
  );
}

function Section({ title, children }) {
  return <section><h4>{title}</h4>{children}</section>;
}

export function Details({ info }) {
  const times = [info.start && `started ${info.start}`, info.end && `ended ${info.end}`, info.duration && `took ${info.duration}`]
    .filter(Boolean).join(" · ");
  const r = info.register_model;
  return (
    <div className="jp-pipeline-details jp-editor-details" data-details-for={info.step}>
      <div className="jp-pipeline-details-head">
        <strong>Last run</strong><span className="jp-pipeline-kind">{info.kind}</span>
        <span className="jp-pipeline-badge" data-status={info.status}>{info.status}</span>
      </div>
      {times && <div className="jp-pipeline-times">{times}</div>}
      {info.reused_from && <div className="jp-pipeline-times">reused from {info.reused_from}</div>}
      {info.worker && <div className="jp-pipeline-times" data-worker={info.worker}>ran on Dask worker {info.worker}</div>}
      {info.failure && <div className="jp-pipeline-error">{info.failure}</div>}
      {info.condition && <Section title="Condition"><div className="jp-pipeline-outcome" data-outcome={info.condition.outcome}>{info.condition.text}</div></Section>}
      {r && <Section title="Model package"><div>{`${r.Group} version ${r.Version} (${r.ModelApprovalStatus})`}</div></Section>}
      {info.transform && <Section title="Transform"><div>{`${info.transform.Rows} rows in batches of ${info.transform.BatchSize}`}</div></Section>}
      {info.inputs?.length > 0 && <Section title="Inputs"><ValueTable items={info.inputs} /></Section>}
      {info.outputs?.length > 0 && <Section title="Outputs"><ValueTable items={info.outputs} /></Section>}
      {info.stdout && <Section title="stdout"><pre className="jp-pipeline-stream">{info.stdout}</pre></Section>}
      {info.stderr && <Section title="stderr"><pre className="jp-pipeline-stream">{info.stderr}</pre></Section>}
      {info.traceback && <Section title="Traceback"><pre className="jp-pipeline-traceback">{info.traceback}</pre></Section>}
    </div>
  );
}
