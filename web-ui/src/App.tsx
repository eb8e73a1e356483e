// Routes and the frame around every page: header with project picker (keys beside names,
// "New project…" for admins), navigation, live-connection indicator, and the account menu (account, tokens, users, sign-out).
// A data router (createBrowserRouter), not a <BrowserRouter>: only a data router can hold a
// navigation while a page asks whether to discard unsaved edits (stores/leavePrompt.tsx),
// Back and the project picker included.
import { useState } from 'react'
import type { FormEvent, ReactNode } from 'react'
import {
  createBrowserRouter,
  Navigate,
  NavLink,
  Outlet,
  RouterProvider,
  useMatch,
  useNavigate,
  type RouteObject,
} from 'react-router'
import { api, call, fieldErrors, messageOf } from './api/client'
import { keyFromName, projectPath } from './api/projectKey'
import { AccountMenu } from './components/AccountMenu'
import { ErrorState, FieldError, Loading } from './components/common'
import { Account } from './pages/Account'
import { Alerts } from './pages/Alerts'
import { AuditLog } from './pages/AuditLog'
import { Debugger } from './pages/Debugger'
import { Environments } from './pages/Environments'
import { FlagInsights } from './pages/FlagInsights'
import { FlagPage } from './pages/FlagPage'
import { FlagsList } from './pages/FlagsList'
import { Login } from './pages/Login'
import { Scheduled } from './pages/Scheduled'
import { Segments } from './pages/Segments'
import { Tokens } from './pages/Tokens'
import { Users } from './pages/Users'
import { useLiveStatus } from './stores/live'
import { SessionProvider, useSession } from './stores/session'
import { useAsync } from './stores/useAsync'

/** The projects the user can see; refetched when the URL names another project (the frame
 * survives navigation, and a project created since would otherwise be missing). */
function useProjects(current?: string) {
  return useAsync(() => call(api.GET('/api/v1/projects')), [current])
}

function Home() {
  const projects = useProjects()
  const { user, isGlobalAdmin } = useSession()
  if (projects.loading) return <Loading what="projects" />
  if (projects.error) return <ErrorState error={projects.error} retry={projects.reload} />
  // The user's own project if they are limited to one, else the one this tab used last,
  // else the first; only ever one the list has (another would be a dead end).
  const keys = (projects.data ?? []).map((p) => p.key)
  const last = sessionStorage.getItem('flagpole.project')
  const first = [user?.project, last].find((k) => k && keys.includes(k)) ?? keys[0]
  if (!first)
    return (
      <>
        <p className="state empty">
          No projects yet.{' '}
          {isGlobalAdmin ? 'Create the first one:' : 'Ask an administrator to create one.'}
        </p>
        {isGlobalAdmin && <CreateProject />}
      </>
    )
  return <Navigate to={projectPath(first)} replace />
}

function CreateProject() {
  const navigate = useNavigate()
  const [key, setKey] = useState('')
  // The key follows the name until someone edits it.
  const [keyEdited, setKeyEdited] = useState(false)
  const [name, setName] = useState('')
  const [errors, setErrors] = useState<Record<string, string>>({})
  const submit = async (e: FormEvent) => {
    e.preventDefault()
    try {
      const created = await call(api.POST('/api/v1/projects', { body: { key, name: name || null } }))
      navigate(projectPath(created.key))
    } catch (err) {
      const f = fieldErrors(err)
      setErrors(Object.keys(f).length ? f : { key: messageOf(err) })
    }
  }
  return (
    <form className="card" onSubmit={submit} aria-label="New project">
      <label htmlFor="project-name">Name</label>
      <input
        id="project-name"
        value={name}
        onChange={(e) => {
          setName(e.target.value)
          if (!keyEdited) setKey(keyFromName(e.target.value))
        }}
      />
      <FieldError message={errors.name} />
      <label htmlFor="project-key">Project key</label>
      <input
        id="project-key"
        required
        value={key}
        aria-describedby="project-key-hint"
        onChange={(e) => {
          setKey(e.target.value)
          setKeyEdited(true)
        }}
      />
      <span id="project-key-hint" className="hint">
        Used in URLs and the API: letters, digits, <code>-</code> and <code>_</code>. It cannot be changed later.
      </span>
      <FieldError message={errors.key} />
      <button type="submit" className="primary">Create project</button>
    </form>
  )
}

function NewProject() {
  const { isGlobalAdmin } = useSession()
  return (
    <>
      <h1>New project</h1>
      {isGlobalAdmin ? (
        <>
          <p className="hint">A project starts with Development, Staging and Production (critical) environments.</p>
          <CreateProject />
        </>
      ) : (
        <p className="state empty">Only an administrator of all projects can create projects.</p>
      )}
    </>
  )
}

/** The picker's value that opens "New project": a space, which no project key contains. */
const NEW_PROJECT = ' new project'


function Frame({ children }: { children: ReactNode }) {
  const { user, signOut, isGlobalAdmin } = useSession()
  // The frame is the layout route, above the page's own route, so it reads the project from
  // the URL itself. Pages outside a project (tokens, users) keep the last project's navigation.
  const inProject = useMatch('/p/:project/*')?.params.project
  if (inProject) sessionStorage.setItem('flagpole.project', inProject)
  const project = inProject ?? sessionStorage.getItem('flagpole.project') ?? undefined
  const navigate = useNavigate()
  const projects = useProjects(project)
  const live = useLiveStatus(project)
  const options = [...(projects.data ?? [])]
  if (project && !options.some((p) => p.key === project)) options.push({ key: project, name: project } as (typeof options)[number])
  return (
    <>
      <a href="#main" className="skip">Skip to content</a>
      <header className="top">
        <strong className="brand">Flagpole</strong>
        {project && (
          <>
            <label htmlFor="project-picker" className="sr-only">Project</label>
            <select
              id="project-picker"
              value={project}
              onChange={(e) =>
                navigate(e.target.value === NEW_PROJECT ? '/projects/new' : projectPath(e.target.value))
              }
            >
              {options.map((p) => (
                <option key={p.key} value={p.key}>
                  {p.name && p.name !== p.key ? `${p.name} (${p.key})` : p.key}
                </option>
              ))}
              {isGlobalAdmin && <option value={NEW_PROJECT}>New project…</option>}
            </select>
          </>
        )}
        <nav aria-label="Main">
          {project && (
            <>
              <NavLink to={projectPath(project)}>Flags</NavLink>
              <NavLink to={projectPath(project, 'segments')}>Segments</NavLink>
              <NavLink to={projectPath(project, 'environments')}>Environments</NavLink>
              <NavLink to={projectPath(project, 'debugger')}>Debugger</NavLink>
              <NavLink to={projectPath(project, 'alerts')}>Alerts</NavLink>
              <NavLink to={projectPath(project, 'audit')}>Audit log</NavLink>
            </>
          )}
        </nav>
        <span className="who">
          {project && (
            <span className={`live ${live ? 'on' : 'off'}`} title={live ? 'Live updates connected' : 'Live updates disconnected'} data-testid="live">
              {live ? '● Live' : '○ Offline'}
            </span>
          )}
          <AccountMenu email={user?.email} role={user?.role} isGlobalAdmin={isGlobalAdmin} onSignOut={() => void signOut()} />
        </span>
      </header>
      <main id="main" className="page" tabIndex={-1}>
        {children}
      </main>
    </>
  )
}

/** Signs in first; then every page inside the frame, which stays mounted across pages. */
function Authed() {
  const { user, loading } = useSession()
  if (loading) return <Loading what="session" />
  if (!user) return <Login />
  return (
    <Frame>
      <Outlet />
    </Frame>
  )
}

const routes: RouteObject[] = [
  {
    element: <Authed />,
    children: [
      { path: '/', element: <Home /> },
      { path: '/p/:project/flags', element: <FlagsList /> },
      { path: '/p/:project/flags/:flag', element: <FlagPage /> },
      { path: '/p/:project/flags/:flag/insights', element: <FlagInsights /> },
      { path: '/p/:project/segments', element: <Segments /> },
      { path: '/p/:project/environments', element: <Environments /> },
      { path: '/p/:project/debugger', element: <Debugger /> },
      { path: '/p/:project/alerts', element: <Alerts /> },
      { path: '/p/:project/scheduled', element: <Scheduled /> },
      { path: '/p/:project/audit', element: <AuditLog /> },
      { path: '/tokens', element: <Tokens /> },
      { path: '/users', element: <Users /> },
      { path: '/account', element: <Account /> },
      { path: '/projects/new', element: <NewProject /> },
      {
        path: '*',
        element: (
          <p className="state empty">
            No page here. <a href="/">Go to the start.</a>
          </p>
        ),
      },
    ],
  },
]

export default function App() {
  // Created once per mount rather than on import, so importing this module starts nothing.
  const [router] = useState(() => createBrowserRouter(routes))
  return (
    <SessionProvider>
      <RouterProvider router={router} />
    </SessionProvider>
  )
}
