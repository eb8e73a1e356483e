import { cleanup, fireEvent, render, screen } from '@testing-library/react'
import { afterEach, expect, it } from 'vitest'
import type { FlagDetail } from '../api/client'
import { FlagLifecycle } from './FlagLifecycle'

afterEach(cleanup)

function flag(patch: Partial<FlagDetail>): FlagDetail {
  return {
    key: 'nightly-reindex',
    name: 'Nightly reindex',
    description: '',
    tags: [],
    kind: 'boolean',
    variants: [],
    salt: '',
    type: 'operational',
    permanent: false,
    archived: false,
    version: 3,
    created_at: 0,
    updated_at: 0,
    environments: {},
    lifecycle: { stale: false, reasons: [] },
    ...patch,
  }
}

const stale = {
  stale: true,
  reasons: [
    { code: 'lifetime_exceeded', message: 'lifetime of 7 days for operational flags exceeded (created 10 days ago)' },
    { code: 'not_evaluated', message: 'not evaluated in any environment for the last 7 days' },
  ],
}

it('says a flag is potentially stale, with every reason', () => {
  render(<FlagLifecycle project="shop" flag={flag({ lifecycle: stale })} writable={false} onSaved={() => {}} />)
  expect(screen.getByTestId('stale-badge').textContent).toBe('Potentially stale')
  const reasons = screen.getByRole('list', { name: 'Why it is potentially stale' })
  expect(Array.from(reasons.querySelectorAll('li')).map((li) => li.textContent)).toEqual(stale.reasons.map((r) => r.message))
  // A reader sees the type in words and nothing to change.
  expect(screen.getByText('Operational')).toBeTruthy()
  expect(screen.queryByRole('button')).toBeNull()
})

it('shows a permanent flag as such, without reasons', () => {
  render(<FlagLifecycle project="shop" flag={flag({ permanent: true })} writable={false} onSaved={() => {}} />)
  expect(screen.queryByTestId('stale-badge')).toBeNull()
  expect(screen.queryByRole('list')).toBeNull()
  expect(screen.getAllByText(/permanent/).length).toBeGreaterThan(0)
})

it('lets a writer save only a change of type or mark', () => {
  render(<FlagLifecycle project="shop" flag={flag({})} writable onSaved={() => {}} />)
  const save = screen.getByRole('button', { name: 'Save lifecycle' }) as HTMLButtonElement
  expect(save.disabled).toBe(true)
  fireEvent.change(screen.getByLabelText('Type'), { target: { value: 'kill_switch' } })
  expect(save.disabled).toBe(false)
  fireEvent.change(screen.getByLabelText('Type'), { target: { value: 'operational' } })
  expect(save.disabled).toBe(true)
  fireEvent.click(screen.getByLabelText(/^Permanent/))
  expect(save.disabled).toBe(false)
})
