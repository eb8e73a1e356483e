import { cleanup, render } from '@testing-library/react'
import { afterEach, expect, it } from 'vitest'
import { Field } from './common'

afterEach(cleanup)

// The two-column forms place cells in order: label, control, label, control. An error that
// became a cell of its own shifted every later label beside the wrong input.
it('keeps a field error inside its control cell, so cells still pair label and control', () => {
  const { container } = render(
    <form className="create">
      <Field label="Name" htmlFor="n" error="must not be empty">
        <input id="n" />
      </Field>
      <Field label="Key" htmlFor="k" error="may contain only letters">
        <input id="k" />
      </Field>
      <Field label="Tags" htmlFor="t">
        <input id="t" />
      </Field>
    </form>,
  )
  const cells = Array.from(container.querySelector('form')!.children)
  expect(cells.map((c) => c.tagName)).toEqual(['LABEL', 'DIV', 'LABEL', 'DIV', 'LABEL', 'DIV'])
  cells.forEach((cell, i) => {
    if (i % 2 === 0) expect(cells[i + 1].querySelector(`#${(cell as HTMLLabelElement).htmlFor}`)).not.toBeNull()
  })
  expect(cells[1].textContent).toContain('must not be empty')
  expect(cells[3].textContent).toContain('may contain only letters')
})
