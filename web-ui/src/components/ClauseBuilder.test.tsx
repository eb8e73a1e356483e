import { cleanup, fireEvent, render, screen } from '@testing-library/react'
import { useState } from 'react'
import { afterEach, describe, expect, it } from 'vitest'
import type { Clause } from '../api/model'
import { ClauseBuilder } from './ClauseBuilder'

afterEach(cleanup)

function Harness({ initial, errors = {}, onValue }: { initial: Clause; errors?: Record<string, string>; onValue: (c: Clause) => void }) {
  const [clause, setClause] = useState(initial)
  return (
    <ClauseBuilder
      label="Rule 1 condition 1"
      clause={clause}
      segments={[{ key: 'beta', name: 'Beta testers' }, { key: 'staff', name: 'Staff' }]}
      errors={errors}
      onChange={(c) => {
        setClause(c)
        onValue(c)
      }}
      onRemove={() => {}}
    />
  )
}

describe('clause builder', () => {
  it('edits attribute, operator and typed values', () => {
    let last: Clause | undefined
    render(<Harness initial={{ attribute: '', op: 'in', values: [] }} onValue={(c) => (last = c)} />)
    fireEvent.change(screen.getByLabelText('Attribute'), { target: { value: 'age' } })
    fireEvent.change(screen.getByLabelText('Operator'), { target: { value: 'gte' } })
    fireEvent.change(screen.getByLabelText('Values (comma-separated)'), { target: { value: '18, 21' } })
    expect(last).toEqual({ attribute: 'age', op: 'gte', values: [18, 21] })
    fireEvent.click(screen.getByLabelText('not'))
    expect(last?.negate).toBe(true)
  })

  it('picks segments instead of values for in_segment, and drops values for exists', () => {
    let last: Clause | undefined
    render(<Harness initial={{ attribute: 'plan', op: 'in', values: ['pro'] }} onValue={(c) => (last = c)} />)
    fireEvent.change(screen.getByLabelText('Operator'), { target: { value: 'in_segment' } })
    expect(screen.queryByLabelText('Attribute')).toBeNull()
    const picker = screen.getByLabelText('Segments') as HTMLSelectElement
    ;(picker.options[1] as HTMLOptionElement).selected = true
    fireEvent.change(picker)
    expect(last).toMatchObject({ attribute: '', op: 'in_segment', values: ['staff'] })
    fireEvent.change(screen.getByLabelText('Operator'), { target: { value: 'exists' } })
    expect(last?.values).toEqual([])
    expect(screen.queryByLabelText('Values (comma-separated)')).toBeNull()
  })

  it('shows server errors next to the field they name', () => {
    render(
      <Harness
        initial={{ attribute: '', op: 'in', values: [] }}
        errors={{ attribute: 'attribute is required', 'values[0]': 'expected a string' }}
        onValue={() => {}}
      />,
    )
    const alerts = screen.getAllByRole('alert').map((a) => a.textContent)
    expect(alerts).toEqual(['attribute is required', 'expected a string'])
  })
})
