// The one review every change to a critical environment goes through (toggle, save,
// revert, archive): what changes, as a diff, and a comment that lands in the audit log
// and the flag's history. The comment is required when the project says so.
import { useId, useState } from 'react'
import type { ReactNode } from 'react'
import type { Change } from '../api/diff'
import { ConfirmDialog } from './common'
import { DiffView } from './DiffView'

export function ReviewDialog({
  title,
  changes,
  warnings = [],
  commentRequired,
  confirmLabel,
  danger,
  children,
  onConfirm,
  onCancel,
}: {
  title: string
  /** The diff to review; omitted when `children` shows it (a revert's per-environment lists). */
  changes?: Change[]
  /** Said in plain words above the diff. */
  warnings?: string[]
  commentRequired: boolean
  confirmLabel: string
  danger?: boolean
  children?: ReactNode
  onConfirm: (comment: string) => void
  onCancel: () => void
}) {
  const [comment, setComment] = useState('')
  const id = useId()
  const missing = commentRequired && comment.trim() === ''
  return (
    <ConfirmDialog
      title={title}
      confirmLabel={confirmLabel}
      danger={danger}
      confirmDisabled={missing}
      onCancel={onCancel}
      onConfirm={() => onConfirm(comment.trim())}
    >
      {warnings.map((w) => (
        <p key={w} className="warning" role="alert">
          {w}
        </p>
      ))}
      {changes && <DiffView changes={changes} />}
      {children}
      <label htmlFor={id}>Comment{commentRequired ? ' (required)' : ''}</label>
      <textarea
        id={id}
        rows={2}
        value={comment}
        required={commentRequired}
        aria-required={commentRequired}
        placeholder="Why: recorded in the audit log and the flag's history"
        onChange={(e) => setComment(e.target.value)}
      />
      {missing && <p className="hint">This project requires a comment for changes in critical environments.</p>}
    </ConfirmDialog>
  )
}
