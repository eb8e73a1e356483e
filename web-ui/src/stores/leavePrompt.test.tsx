import { act, cleanup, fireEvent, render, screen } from '@testing-library/react'
import { useState } from 'react'
import { createMemoryRouter, RouterProvider, type Location } from 'react-router'
import { afterEach, describe, expect, it } from 'vitest'
import { leavesPage, useLeavePrompt } from './leavePrompt'

afterEach(cleanup)

const at = (pathname: string, search = '', hash = ''): Location => ({ pathname, search, hash, state: null, key: 'k' })

describe('which navigations leave the page', () => {
  it('another path or query leaves; the hash alone or the same place does not', () => {
    expect(leavesPage(at('/p/x/flags/f'), at('/p/x/flags'))).toBe(true)
    expect(leavesPage(at('/p/x/audit'), at('/p/x/audit', '?env=prod'))).toBe(true)
    expect(leavesPage(at('/p/x/flags/f'), at('/p/x/flags/f', '', '#rules'))).toBe(false)
    expect(leavesPage(at('/p/x/flags/f'), at('/p/x/flags/f'))).toBe(false)
  })
})

/** A page with one field; typing in it is an unsaved edit of "Production". */
function Editor() {
  const [text, setText] = useState('')
  const prompt = useLeavePrompt(text ? 'Production' : null)
  return (
    <>
      <label>
        Description <input value={text} onChange={(e) => setText(e.target.value)} />
      </label>
      {prompt}
    </>
  )
}

/** The app's shape: a list, then the editor opened from it (so Back returns to the list). */
function app() {
  const router = createMemoryRouter(
    [
      { path: '/flags', element: <h1>Flags</h1> },
      { path: '/flags/f', element: <Editor /> },
      { path: '/other/flags', element: <h1>Other project</h1> },
    ],
    { initialEntries: ['/flags', '/flags/f'], initialIndex: 1 },
  )
  render(<RouterProvider router={router} />)
  return router
}

const dialog = () => screen.queryByRole('dialog', { name: 'Discard unsaved changes?' })

describe('the prompt before leaving unsaved edits', () => {
  it('lets every navigation through while nothing is edited', async () => {
    const router = app()
    await act(() => router.navigate(-1))
    expect(router.state.location.pathname).toBe('/flags')
    expect(dialog()).toBeNull()
  })

  it('holds Back until the user decides: keep stays with the edit, discard goes back', async () => {
    const router = app()
    fireEvent.change(screen.getByLabelText('Description'), { target: { value: 'Pro plan' } })
    await act(() => router.navigate(-1))
    expect(dialog()?.textContent).toContain('unsaved changes in Production')
    expect(router.state.location.pathname).toBe('/flags/f')

    fireEvent.click(screen.getByRole('button', { name: 'Keep editing' }))
    expect(dialog()).toBeNull()
    expect(router.state.location.pathname).toBe('/flags/f')
    expect((screen.getByLabelText('Description') as HTMLInputElement).value).toBe('Pro plan')

    await act(() => router.navigate(-1))
    await act(async () => fireEvent.click(screen.getByRole('button', { name: 'Discard' })))
    expect(router.state.location.pathname).toBe('/flags')
    expect(screen.getByRole('heading', { name: 'Flags' })).toBeTruthy()
  })

  it('holds a navigation started by code, such as the project picker', async () => {
    const router = app()
    fireEvent.change(screen.getByLabelText('Description'), { target: { value: 'x' } })
    await act(() => router.navigate('/other/flags'))
    expect(dialog()).not.toBeNull()
    expect(router.state.location.pathname).toBe('/flags/f')
    await act(async () => fireEvent.click(screen.getByRole('button', { name: 'Discard' })))
    expect(router.state.location.pathname).toBe('/other/flags')
  })

  it('asks the browser before the tab is closed or reloaded, only while something is unsaved', () => {
    app()
    const unload = () => {
      const e = new Event('beforeunload', { cancelable: true })
      window.dispatchEvent(e)
      return e.defaultPrevented
    }
    expect(unload()).toBe(false)
    fireEvent.change(screen.getByLabelText('Description'), { target: { value: 'x' } })
    expect(unload()).toBe(true)
    fireEvent.change(screen.getByLabelText('Description'), { target: { value: '' } })
    expect(unload()).toBe(false)
  })
})
