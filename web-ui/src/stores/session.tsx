// Who is signed in, and what their role lets the UI offer. The server enforces roles
// regardless; hiding controls only spares people buttons that would fail.
import { createContext, useCallback, useContext, useEffect, useMemo, useState } from 'react'
import type { ReactNode } from 'react'
import { api, call, setCsrfToken, setUnauthenticatedHandler, type User } from '../api/client'

const RANK = { reader: 0, writer: 1, admin: 2 } as const

export interface Session {
  user: User | null
  /** True until the first /auth/me answered. */
  loading: boolean
  signIn(email: string, password: string): Promise<void>
  signOut(): Promise<void>
  /** May the user change flags, segments and configs in `project`? */
  canWrite(project?: string): boolean
  /** May the user manage environments and SDK keys of `project`? */
  canAdmin(project?: string): boolean
  /** Unscoped admin: users and API tokens. */
  isGlobalAdmin: boolean
}

const SessionContext = createContext<Session | null>(null)

function allows(user: User | null, role: keyof typeof RANK, project?: string): boolean {
  if (!user) return false
  if (user.project && project && user.project !== project) return false
  return RANK[user.role] >= RANK[role]
}

export function SessionProvider({ children }: { children: ReactNode }) {
  const [user, setUser] = useState<User | null>(null)
  const [loading, setLoading] = useState(true)

  useEffect(() => {
    setUnauthenticatedHandler(() => setUser(null))
    api
      .GET('/api/v1/auth/me')
      .then(({ data }) => {
        if (data) {
          setCsrfToken(data.csrf_token)
          setUser(data.user)
        }
      })
      .catch(() => {})
      .finally(() => setLoading(false))
  }, [])

  const signIn = useCallback(async (email: string, password: string) => {
    const info = await call(api.POST('/api/v1/auth/login', { body: { email, password } }))
    setCsrfToken(info.csrf_token)
    setUser(info.user)
  }, [])

  const signOut = useCallback(async () => {
    await api.POST('/api/v1/auth/logout').catch(() => {})
    setCsrfToken('')
    setUser(null)
  }, [])

  const value = useMemo<Session>(
    () => ({
      user,
      loading,
      signIn,
      signOut,
      canWrite: (project) => allows(user, 'writer', project),
      canAdmin: (project) => allows(user, 'admin', project),
      isGlobalAdmin: !!user && user.role === 'admin' && !user.project,
    }),
    [user, loading, signIn, signOut],
  )
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>
}

export function useSession(): Session {
  const s = useContext(SessionContext)
  if (!s) throw new Error('useSession outside SessionProvider')
  return s
}
