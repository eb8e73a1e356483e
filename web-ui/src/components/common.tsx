// Small shared pieces: loading, error and empty states, field errors, the switch and the
// confirmation dialog.
import { useEffect, useId, useRef } from 'react'
import type { ReactNode } from 'react'
import { messageOf } from '../api/client'

export function Loading({ what }: { what: string }) {
  return (
    <p className="state" role="status" aria-live="polite">
      Loading {what}…
    </p>
  )
}

export function ErrorState({ error, retry }: { error: unknown; retry?: () => void }) {
  return (
    <div className="state error" role="alert">
      <p>Something went wrong: {messageOf(error)}</p>
      {retry && (
        <button type="button" onClick={retry}>
          Try again
        </button>
      )}
    </div>
  )
}

export function Empty({ children }: { children: ReactNode }) {
  return <div className="state empty">{children}</div>
}

/** A server validation message next to the field it names. */
export function FieldError({ message, id }: { message?: string; id?: string }) {
  if (!message) return null
  return (
    <span className="field-error" role="alert" id={id}>
      {message}
    </span>
  )
}

/**
 * One row of a two-column form: the label, then the control with its error below it. The
 * error lives inside the control's cell, so a message never becomes a grid cell of its own
 * and pushes the labels after it beside the wrong inputs.
 */
export function Field({
  label,
  htmlFor,
  error,
  children,
}: {
  label: ReactNode
  htmlFor: string
  error?: string
  children: ReactNode
}) {
  return (
    <>
      <label htmlFor={htmlFor}>{label}</label>
      <div className="control">
        {children}
        <FieldError message={error} />
      </div>
    </>
  )
}

/** An on/off switch: a button with `role="switch"`, operable by keyboard. */
export function Switch({
  checked,
  onChange,
  label,
  disabled,
}: {
  checked: boolean
  onChange: (next: boolean) => void
  label: string
  disabled?: boolean
}) {
  return (
    <button
      type="button"
      role="switch"
      aria-checked={checked}
      aria-label={label}
      className={`switch ${checked ? 'on' : 'off'}`}
      disabled={disabled}
      onClick={() => onChange(!checked)}
    >
      <span className="knob" aria-hidden="true" />
      <span className="switch-text">{checked ? 'On' : 'Off'}</span>
    </button>
  )
}

/** A modal confirmation: focus starts on Cancel (the safe choice), Escape cancels. */
export function ConfirmDialog({
  title,
  children,
  confirmLabel,
  cancelLabel = 'Cancel',
  danger,
  confirmDisabled,
  onConfirm,
  onCancel,
}: {
  title: string
  children: ReactNode
  confirmLabel: string
  /** The button that closes the dialog without acting (focused when it opens). */
  cancelLabel?: string
  danger?: boolean
  /** The confirm button is disabled while something the dialog asks for is missing. */
  confirmDisabled?: boolean
  onConfirm: () => void
  onCancel: () => void
}) {
  const cancelRef = useRef<HTMLButtonElement>(null)
  const titleId = useId()
  useEffect(() => {
    const previous = document.activeElement as HTMLElement | null
    cancelRef.current?.focus()
    return () => previous?.focus?.()
  }, [])
  return (
    <div className="backdrop" onKeyDown={(e) => e.key === 'Escape' && onCancel()}>
      <div role="dialog" aria-modal="true" aria-labelledby={titleId} className="dialog">
        <h2 id={titleId}>{title}</h2>
        <div>{children}</div>
        <div className="actions">
          <button type="button" ref={cancelRef} onClick={onCancel}>
            {cancelLabel}
          </button>
          <button type="button" className={danger ? 'danger' : 'primary'} disabled={confirmDisabled} onClick={onConfirm}>
            {confirmLabel}
          </button>
        </div>
      </div>
    </div>
  )
}

export function formatTime(ms: number): string {
  return new Date(ms).toLocaleString()
}
