import { cleanup, fireEvent, render, screen } from '@testing-library/react'
import { afterEach, expect, it } from 'vitest'
import { ReviewDialog } from './ReviewDialog'

afterEach(cleanup)

function review(commentRequired: boolean) {
  const confirmed: string[] = []
  render(
    <ReviewDialog
      title="Save checkout in Production?"
      confirmLabel="Save"
      changes={[{ path: 'rules[0].description', before: undefined, after: 'paying customers' }]}
      warnings={['This turns `checkout` ON in Production, a critical environment.']}
      commentRequired={commentRequired}
      onConfirm={(c) => confirmed.push(c)}
      onCancel={() => {}}
    />,
  )
  return confirmed
}

it('shows the diff and warnings, and waits for a required comment', () => {
  const confirmed = review(true)
  expect(screen.getByRole('alert').textContent).toMatch(/ON in Production/)
  expect(screen.getByText('rules[0].description')).toBeTruthy()
  const save = screen.getByRole('button', { name: 'Save' }) as HTMLButtonElement
  expect(save.disabled).toBe(true)
  fireEvent.change(screen.getByLabelText('Comment (required)'), { target: { value: '   ' } })
  expect(save.disabled).toBe(true)
  fireEvent.change(screen.getByLabelText('Comment (required)'), { target: { value: ' launch review ' } })
  expect(save.disabled).toBe(false)
  fireEvent.click(save)
  expect(confirmed).toEqual(['launch review'])
})

it('lets an optional comment stay empty', () => {
  const confirmed = review(false)
  fireEvent.click(screen.getByRole('button', { name: 'Save' }))
  expect(confirmed).toEqual([''])
})
