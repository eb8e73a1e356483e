// The signed-in user's menu at the right of the header: their account, the administration
// pages (for admins of all projects) and sign-out. Folding these into one menu keeps every
// project link visible in a one-row header at laptop widths, whatever the navigation grows to.
import { useEffect, useRef } from 'react'
import type { KeyboardEvent } from 'react'
import { NavLink, useLocation } from 'react-router'

export function AccountMenu({
  email,
  role,
  isGlobalAdmin,
  onSignOut,
}: {
  email?: string
  role?: string
  isGlobalAdmin: boolean
  onSignOut: () => void
}) {
  const menu = useRef<HTMLDetailsElement>(null)
  const { pathname } = useLocation()
  // A link followed closes the menu; so does a click anywhere else.
  useEffect(() => {
    if (menu.current) menu.current.open = false
  }, [pathname])
  useEffect(() => {
    const closeOutside = (e: MouseEvent) => {
      if (menu.current && !menu.current.contains(e.target as Node)) menu.current.open = false
    }
    document.addEventListener('click', closeOutside)
    return () => document.removeEventListener('click', closeOutside)
  }, [])
  const closeOnEscape = (e: KeyboardEvent) => {
    if (e.key === 'Escape' && menu.current?.open) {
      menu.current.open = false
      menu.current.querySelector('summary')?.focus()
    }
  }
  return (
    <details className="account-menu" ref={menu} onKeyDown={closeOnEscape}>
      <summary title="Your account, administration and sign-out">
        <span className="email">{email}</span> <span className="badge">{role}</span>
      </summary>
      <nav aria-label="Account">
        <NavLink to="/account">Your account</NavLink>
        {isGlobalAdmin && (
          <>
            <NavLink to="/tokens">API tokens</NavLink>
            <NavLink to="/users">Users</NavLink>
          </>
        )}
        <button type="button" onClick={onSignOut}>
          Sign out
        </button>
      </nav>
    </details>
  )
}
