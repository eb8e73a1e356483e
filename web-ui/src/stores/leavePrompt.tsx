// The prompt before leaving a page with unsaved edits: the browser's own prompt when the
// tab is closed or reloaded (`beforeunload`), and a dialog for every navigation inside the
// app, whatever starts it (a link, the project picker, code calling `navigate`, the
// browser's Back and Forward buttons). The app runs on a data router (App.tsx), so
// react-router's `useBlocker` holds the navigation until the user decides; on Back the
// router puts the history entry back while the dialog is open. (The app used to catch
// link clicks on the document instead, which missed Back and the picker.)
import { useCallback, useEffect } from 'react'
import { useBlocker, type BlockerFunction, type Location } from 'react-router'
import { ConfirmDialog } from '../components/common'

/** Whether going from `current` to `next` leaves the page: another path or query. A change
 * of the hash alone stays on the page, and so does a navigation to the same place. */
export function leavesPage(current: Location, next: Location): boolean {
  return current.pathname !== next.pathname || current.search !== next.search
}

/**
 * While `dirty` says what is unsaved (`"Production"`), asks before the page is left.
 * Returns the dialog to render (or null).
 */
export function useLeavePrompt(dirty: string | null) {
  const shouldBlock = useCallback<BlockerFunction>(
    ({ currentLocation, nextLocation }) => dirty !== null && leavesPage(currentLocation, nextLocation),
    [dirty],
  )
  const blocker = useBlocker(shouldBlock)
  useEffect(() => {
    if (!dirty) return
    const onUnload = (e: BeforeUnloadEvent) => {
      e.preventDefault()
      // Older browsers show the prompt only when returnValue is set.
      e.returnValue = ''
    }
    window.addEventListener('beforeunload', onUnload)
    return () => window.removeEventListener('beforeunload', onUnload)
  }, [dirty])
  if (blocker.state !== 'blocked') return null
  return (
    <ConfirmDialog
      title="Discard unsaved changes?"
      confirmLabel="Discard"
      cancelLabel="Keep editing"
      danger
      onCancel={() => blocker.reset()}
      onConfirm={() => blocker.proceed()}
    >
      <p>You have unsaved changes in {dirty}. They are lost if you leave this page.</p>
    </ConfirmDialog>
  )
}
