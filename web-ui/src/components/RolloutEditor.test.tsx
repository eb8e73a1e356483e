import { cleanup, fireEvent, render, screen } from '@testing-library/react'
import { useState } from 'react'
import { afterEach, expect, it } from 'vitest'
import type { Rollout } from '../api/model'
import { RolloutEditor } from './RolloutEditor'

afterEach(cleanup)

it('shows the running total and whether it reaches 100%', () => {
  let last: Rollout | undefined
  function Harness() {
    const [r, setR] = useState<Rollout>({ weights: [{ variant: 'on', weight: 100_000 }, { variant: 'off', weight: 0 }] })
    return (
      <RolloutEditor
        label="Default rollout"
        rollout={r}
        variants={[{ key: 'on', value: true }, { key: 'off', value: false }]}
        errors={{}}
        onChange={(n) => {
          setR(n)
          last = n
        }}
      />
    )
  }
  render(<Harness />)
  expect(screen.getByText('Total: 100%')).toBeTruthy()
  fireEvent.change(screen.getByLabelText('on'), { target: { value: '30' } })
  expect(screen.getByRole('alert').textContent).toMatch(/Total: 30%.*must add up to 100%/)
  fireEvent.change(screen.getByLabelText('off'), { target: { value: '70' } })
  expect(screen.queryByRole('alert')).toBeNull()
  expect(last?.weights).toEqual([{ variant: 'on', weight: 30_000 }, { variant: 'off', weight: 70_000 }])
})
