// Routes and the frame around every page: header with project picker, navigation,
// live-connection indicator and sign-out.
import { useState } from 'react'
import type { FormEvent, ReactNode } from 'react'
import { BrowserRouter, Navigate, NavLink, Route, Routes, useNavigate, useParams } from 'react-router'
import { api, call, fieldErrors, messageOf } from './api/client'
import { ErrorState, FieldError, Loading } from './components/common'
import { AuditLog } from './pages/AuditLog'
import { Debugger } from './pages/Debugger'
import { Environments } from './pages/Environments'
import { FlagPage } from './pages/FlagPage'
import { FlagsList } from './pages/FlagsList'
import { Login } from './pages/Login'
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
  const first = user?.project ?? projects.data?.[0]?.key
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
  return <Navigate to={`/p/${first}/flags`} replace />
}

function CreateProject() {
  const navigate = useNavigate()
  const [key, setKey] = useState('')
  const [name, setName] = useState('')
  const [errors, setErrors] = useState<Record<string, string>>({})
  const submit = async (e: FormEvent) => {
    e.preventDefault()
    try {
      await call(api.POST('/api/v1/projects', { body: { key, name: name || null } }))
      navigate(`/p/${key}/flags`)
    } catch (err) {
      const f = fieldErrors(err)
      setErrors(Object.keys(f).length ? f : { key: messageOf(err) })
    }
  }
  return (
    <form className="card" onSubmit={submit} aria-label="New project">
      <label htmlFor="project-key">Project key</label>
      <input id="project-key" required value={key} onChange={(e) => setKey(e.target.value)} />
      <FieldError message={errors.key} />
      <label htmlFor="project-name">Name</label>
      <input id="project-name" value={name} onChange={(e) => setName(e.target.value)} />
      <FieldError message={errors.name} />
      <button type="submit" className="primary">Create project</button>
    </form>
  )
}

function Frame({ children }: { children: ReactNode }) {
  const { user, signOut, isGlobalAdmin } = useSession()
  // Pages outside a project (tokens, users) keep the last project's navigation.
  const params = useParams()
  if (params.project) sessionStorage.setItem('flagpole.project', params.project)
  const project = params.project ?? sessionStorage.getItem('flagpole.project') ?? undefined
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
              onChange={(e) => navigate(`/p/${e.target.value}/flags`)}
            >
              {options.map((p) => (
                <option key={p.key} value={p.key}>
                  {p.name || p.key}
                </option>
              ))}
            </select>
          </>
        )}
        <nav aria-label="Main">
          {project && (
            <>
              <NavLink to={`/p/${project}/flags`}>Flags</NavLink>
              <NavLink to={`/p/${project}/segments`}>Segments</NavLink>
              <NavLink to={`/p/${project}/environments`}>Environments</NavLink>
              <NavLink to={`/p/${project}/debugger`}>Debugger</NavLink>
              <NavLink to={`/p/${project}/audit`}>Audit log</NavLink>
            </>
          )}
          {isGlobalAdmin && (
            <>
              <NavLink to="/tokens">API tokens</NavLink>
              <NavLink to="/users">Users</NavLink>
            </>
          )}
        </nav>
        <span className="who">
          {project && (
            <span className={`live ${live ? 'on' : 'off'}`} title={live ? 'Live updates connected' : 'Live updates disconnected'} data-testid="live">
              {live ? '● Live' : '○ Offline'}
            </span>
          )}
          <span>
            {user?.email} <span className="badge">{user?.role}</span>
          </span>
          <button type="button" onClick={() => void signOut()}>
            Sign out
          </button>
        </span>
      </header>
      <main id="main" className="page" tabIndex={-1}>
        {children}
      </main>
    </>
  )
}

function Authed() {
  const { user, loading } = useSession()
  if (loading) return <Loading what="session" />
  if (!user) return <Login />
  return (
    <Routes>
      <Route path="/" element={<Frame><Home /></Frame>} />
      <Route path="/p/:project/flags" element={<Frame><FlagsList /></Frame>} />
      <Route path="/p/:project/flags/:flag" element={<Frame><FlagPage /></Frame>} />
      <Route path="/p/:project/segments" element={<Frame><Segments /></Frame>} />
      <Route path="/p/:project/environments" element={<Frame><Environments /></Frame>} />
      <Route path="/p/:project/debugger" element={<Frame><Debugger /></Frame>} />
      <Route path="/p/:project/audit" element={<Frame><AuditLog /></Frame>} />
      <Route path="/tokens" element={<Frame><Tokens /></Frame>} />
      <Route path="/users" element={<Frame><Users /></Frame>} />
      <Route path="*" element={<Frame><p className="state empty">No page here. <a href="/">Go to the start.</a></p></Frame>} />
    </Routes>
  )
}

export default function App() {
  return (
    <SessionProvider>
      <BrowserRouter>
        <Authed />
      </BrowserRouter>
    </SessionProvider>
  )
}
