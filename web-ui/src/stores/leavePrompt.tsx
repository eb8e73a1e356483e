// The prompt before leaving a page with unsaved edits: the browser's own prompt when the
// tab is closed or reloaded (`beforeunload`), and a dialog when a link inside the app is
// followed. The app uses a <BrowserRouter>, whose navigation cannot be blocked (react-
// router's `useBlocker` needs a data router), so links are caught on their way down: a
// capture listener on the document sees the click before React's root does.
import { useEffect, useState } from 'react'
import { useNavigate } from 'react-router'
import { ConfirmDialog } from '../components/common'

/** The in-app destination of a click on a link, or null when the click is not a plain one. */
export function internalTarget(event: MouseEvent, origin: string): string | null {
  if (event.defaultPrevented || event.button !== 0) return null
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return null
  const anchor = (event.target as Element | null)?.closest?.('a[href]') as HTMLAnchorElement | null
  if (!anchor || (anchor.target && anchor.target !== '_self') || anchor.hasAttribute('download')) return null
  const url = new URL(anchor.href, origin)
  if (url.origin !== origin) return null
  return url.pathname + url.search + url.hash
}

/**
 * While `dirty` says what is unsaved (`"Production"`), asks before the page is left.
 * Returns the dialog to render (or null).
 */
export function useLeavePrompt(dirty: string | null) {
  const navigate = useNavigate()
  const [leaving, setLeaving] = useState<string>()
  useEffect(() => {
    if (!dirty) return
    const onUnload = (e: BeforeUnloadEvent) => {
      e.preventDefault()
      // Older browsers show the prompt only when returnValue is set.
      e.returnValue = ''
    }
    const onClick = (e: MouseEvent) => {
      const to = internalTarget(e, window.location.origin)
      if (to === null || to === window.location.pathname + window.location.search + window.location.hash) return
      e.preventDefault()
      e.stopPropagation()
      setLeaving(to)
    }
    window.addEventListener('beforeunload', onUnload)
    document.addEventListener('click', onClick, true)
    return () => {
      window.removeEventListener('beforeunload', onUnload)
      document.removeEventListener('click', onClick, true)
    }
  }, [dirty])
  if (!leaving || !dirty) return null
  return (
    <ConfirmDialog
      title="Leave without saving?"
      confirmLabel="Leave and discard"
      danger
      onCancel={() => setLeaving(undefined)}
      onConfirm={() => {
        const to = leaving
        setLeaving(undefined)
        navigate(to)
      }}
    >
      <p>You have unsaved changes in {dirty}. They are lost if you leave this page.</p>
    </ConfirmDialog>
  )
}
