// Live updates: one EventSource per open project on GET /api/v1/projects/{p}/events (Server-
// Sent Events fed by the server's change feed). Pages subscribe and refetch what they show
// when an environment of the project moves to a new version.
import { useEffect, useRef, useState } from 'react'
import { api, call } from '../api/client'

export interface LiveChange {
  environment: string
  version: number
}

type Listener = (change: LiveChange | null) => void

interface Channel {
  source: EventSource
  listeners: Set<Listener>
  connected: boolean
  statusListeners: Set<(connected: boolean) => void>
}

const channels = new Map<string, Channel>()

function open(project: string): Channel {
  let ch = channels.get(project)
  if (ch) return ch
  const source = new EventSource(`/api/v1/projects/${encodeURIComponent(project)}/events`)
  const channel: Channel = { source, listeners: new Set(), connected: false, statusListeners: new Set() }
  const setConnected = (c: boolean) => {
    channel.connected = c
    channel.statusListeners.forEach((l) => l(c))
  }
  let everConnected = false
  source.addEventListener('ready', () => {
    // After a reconnect we may have missed changes: everyone refetches. The first
    // connection needs nothing: pages fetched their data as they mounted.
    if (everConnected) channel.listeners.forEach((l) => l(null))
    everConnected = true
    setConnected(true)
  })
  source.addEventListener('change', (e) => {
    const change = JSON.parse((e as MessageEvent).data) as LiveChange
    channel.listeners.forEach((l) => l(change))
  })
  source.addEventListener('resync', () => channel.listeners.forEach((l) => l(null)))
  // The session that opened the stream expired or ended: the server closes the stream, and
  // EventSource must not reconnect into 401s. Asking /auth/me shows the sign-in page if the
  // session is gone (and changes nothing if another tab signed in again meanwhile).
  source.addEventListener('expired', () => {
    source.close()
    setConnected(false)
    channels.delete(project)
    void call(api.GET('/api/v1/auth/me')).catch(() => {})
  })
  source.onerror = () => setConnected(false)
  channels.set(project, channel)
  return channel
}

function release(project: string) {
  const ch = channels.get(project)
  if (ch && ch.listeners.size === 0 && ch.statusListeners.size === 0) {
    ch.source.close()
    channels.delete(project)
  }
}

/**
 * Calls `onChange` whenever something in `project` changes (`null`: unknown what, refetch
 * everything). Bursts (a flag created in every environment) are coalesced into one call.
 */
export function useLive(project: string | undefined, onChange: (change: LiveChange | null) => void) {
  const latest = useRef(onChange)
  useEffect(() => {
    latest.current = onChange
  })
  useEffect(() => {
    if (!project || typeof EventSource === 'undefined') return
    const channel = open(project)
    let timer: ReturnType<typeof setTimeout> | undefined
    let pending: LiveChange | null | undefined
    const listener: Listener = (change) => {
      pending = pending === undefined ? change : null
      if (timer) return
      timer = setTimeout(() => {
        timer = undefined
        const c = pending
        pending = undefined
        latest.current(c ?? null)
      }, 50)
    }
    channel.listeners.add(listener)
    return () => {
      if (timer) clearTimeout(timer)
      channel.listeners.delete(listener)
      release(project)
    }
  }, [project])
}

/** Whether the live channel of `project` is connected (for the header indicator). */
export function useLiveStatus(project: string | undefined): boolean {
  const [connected, setConnected] = useState(false)
  useEffect(() => {
    if (!project || typeof EventSource === 'undefined') return
    const channel = open(project)
    setConnected(channel.connected)
    channel.statusListeners.add(setConnected)
    return () => {
      channel.statusListeners.delete(setConnected)
      release(project)
    }
  }, [project])
  return connected
}
