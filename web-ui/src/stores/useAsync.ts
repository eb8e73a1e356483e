// Loading / error / data for one fetch, with a reload function (used by live updates).
import { useCallback, useEffect, useRef, useState } from 'react'

export interface Async<T> {
  data: T | undefined
  error: unknown
  loading: boolean
  reload(): Promise<void>
  setData(data: T): void
}

export function useAsync<T>(load: () => Promise<T>, deps: unknown[]): Async<T> {
  const [data, setData] = useState<T>()
  const [error, setError] = useState<unknown>()
  const [loading, setLoading] = useState(true)
  const generation = useRef(0)
  // eslint-disable-next-line react-hooks/exhaustive-deps
  const run = useCallback(load, deps)
  const reload = useCallback(async () => {
    const mine = ++generation.current
    try {
      const value = await run()
      if (mine === generation.current) {
        setData(value)
        setError(undefined)
      }
    } catch (e) {
      if (mine === generation.current) setError(e)
    } finally {
      if (mine === generation.current) setLoading(false)
    }
  }, [run])
  useEffect(() => {
    setLoading(true)
    setData(undefined)
    void reload()
  }, [reload])
  return { data, error, loading, reload, setData }
}
