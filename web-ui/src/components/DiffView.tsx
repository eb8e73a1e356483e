import { diffJson, show, type Change } from '../api/diff'

export function DiffView({ before, after, changes }: { before?: unknown; after?: unknown; changes?: Change[] }) {
  const list = changes ?? diffJson(before, after)
  if (list.length === 0) return <p className="hint">No differences.</p>
  return (
    <table className="diff">
      <thead>
        <tr>
          <th scope="col">Field</th>
          <th scope="col">Before</th>
          <th scope="col">After</th>
        </tr>
      </thead>
      <tbody>
        {list.map((c) => (
          <tr key={c.path}>
            <th scope="row">
              <code>{c.path}</code>
            </th>
            <td className="before">
              <code>{show(c.before)}</code>
            </td>
            <td className="after">
              <code>{show(c.after)}</code>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  )
}
