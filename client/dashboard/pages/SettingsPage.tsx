// The runtime settings: limits, policy, idle and lifetime, failed logins, anomalies. The
// server validates; its message is shown beside the field it names.
import { type FormEvent, type ReactNode, useCallback, useEffect, useState } from 'react'
import { toast } from 'sonner'
import type { SessionError } from 'tessera/client'
import { useSession } from 'tessera/react'
import { clock } from '../../ui/time.js'

interface Settings {
  idleAfterSeconds: number
  idleTimeoutSeconds: number
  lifetimeSeconds: number
  idleWarningSeconds: number
  concurrentLimits: { byRole: Record<string, number>; byUser: Record<string, number>; default: number }
  limitPolicy: 'terminate_oldest' | 'block_new'
  failedLogin: { threshold: number; windowSeconds: number; lockoutEnabled: boolean; lockoutSeconds: number; byUser: Record<string, number> }
  anomaly: { distinctIps: number; windowHours: number }
  version: number
  updatedAt: string
  updatedBy: number | null
}

type Editable = Omit<Settings, 'version' | 'updatedAt' | 'updatedBy'>
const ROLES = ['admin', 'reviewer', 'user'] as const

/** "body.failedLogin.threshold must be <= 1000" → ["failedLogin.threshold", the message]. */
function fieldOf(message: string): string | null {
  return /^body\.([\w.]+)/.exec(message)?.[1] ?? null
}

/** `{ "42": 2 }` as editable lines "42 = 2", and back. */
const linesOf = (record: Record<string, number>) =>
  Object.entries(record)
    .map(([k, v]) => `${k} = ${v}`)
    .join('\n')
function recordOf(lines: string): Record<string, number> | string {
  const out: Record<string, number> = {}
  for (const line of lines.split('\n').map((l) => l.trim()).filter(Boolean)) {
    const m = /^(\d+)\s*=\s*(\d+)$/.exec(line)
    if (!m) return `"${line}" is not "user id = limit"`
    out[m[1]!] = Number(m[2])
  }
  return out
}

function Field({ id, label, hint, error, children }: { id: string; label: string; hint?: string; error?: string; children: ReactNode }) {
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      {children}
      {hint && (
        <span className="muted small" id={`${id}-hint`}>
          {hint}
        </span>
      )}
      {error && (
        <span className="field-error" id={`${id}-error`} role="alert">
          {error}
        </span>
      )}
    </div>
  )
}

export function SettingsPage() {
  const { client } = useSession()
  const [saved, setSaved] = useState<Settings | null>(null)
  const [form, setForm] = useState<Editable | null>(null)
  const [byUserText, setByUserText] = useState({ limits: '', failedLogin: '' })
  const [errors, setErrors] = useState<Record<string, string>>({})
  const [busy, setBusy] = useState(false)

  const take = useCallback((s: Settings) => {
    const { version: _v, updatedAt: _u, updatedBy: _b, ...editable } = s
    setSaved(s)
    setForm(editable)
    setByUserText({ limits: linesOf(s.concurrentLimits.byUser), failedLogin: linesOf(s.failedLogin.byUser) })
  }, [])
  useEffect(() => {
    client.request<Settings>('GET', '/admin/sessions/config').then(take, (err: Error) => toast.error(err.message))
  }, [client, take])

  if (!form || !saved) return <p className="muted">Loading the settings…</p>

  const num = (value: string) => (value === '' ? Number.NaN : Number(value))
  const update = (change: (f: Editable) => Editable) => setForm((f) => (f ? change(f) : f))
  const input = (id: string, value: number, set: (n: number) => void, extra: { min?: number } = {}) => (
    <input
      id={id}
      className="input"
      type="number"
      inputMode="numeric"
      min={extra.min}
      value={Number.isNaN(value) ? '' : value}
      aria-invalid={errors[id] ? true : undefined}
      aria-describedby={errors[id] ? `${id}-error` : undefined}
      onChange={(e) => set(num(e.target.value))}
    />
  )

  const submit = async (event: FormEvent) => {
    event.preventDefault()
    const limitsByUser = recordOf(byUserText.limits)
    const failedByUser = recordOf(byUserText.failedLogin)
    const local: Record<string, string> = {}
    if (typeof limitsByUser === 'string') local['concurrentLimits.byUser'] = limitsByUser
    if (typeof failedByUser === 'string') local['failedLogin.byUser'] = failedByUser
    if (Object.keys(local).length > 0) return setErrors(local)
    setBusy(true)
    setErrors({})
    try {
      const body: Editable = {
        ...form,
        concurrentLimits: { ...form.concurrentLimits, byUser: limitsByUser as Record<string, number> },
        failedLogin: { ...form.failedLogin, byUser: failedByUser as Record<string, number> },
      }
      take(await client.request<Settings>('PUT', '/admin/sessions/config', body))
      toast.success('Saved: in force on every node within a second')
    } catch (err) {
      const e = err as SessionError
      const field = e.code === 'VALIDATION_FAILED' ? fieldOf(e.message) : null
      setErrors(field ? { [field]: e.message } : { form: e.message })
    } finally {
      setBusy(false)
    }
  }

  return (
    <section className="page" aria-labelledby="settings-title">
      <div className="page-head">
        <h1 id="settings-title" className="page-title">
          Settings
        </h1>
        <span className="muted small">
          Version {saved.version}, changed {clock(saved.updatedAt)}
        </span>
      </div>
      <p className="notice notice-warning">Changes are in force on every node within a second; sessions already open follow the new idle rules from their next deadline.</p>
      <form className="settings" onSubmit={submit} noValidate>
        <fieldset className="card">
          <legend className="card-title">Idle and lifetime</legend>
          <Field id="idleAfterSeconds" label="Idle after (seconds)" hint="Quiet time before a session shows as idle" error={errors.idleAfterSeconds}>
            {input('idleAfterSeconds', form.idleAfterSeconds, (n) => update((f) => ({ ...f, idleAfterSeconds: n })), { min: 1 })}
          </Field>
          <Field id="idleTimeoutSeconds" label="Idle timeout (seconds)" hint="Quiet time before a session is ended" error={errors.idleTimeoutSeconds}>
            {input('idleTimeoutSeconds', form.idleTimeoutSeconds, (n) => update((f) => ({ ...f, idleTimeoutSeconds: n })), { min: 2 })}
          </Field>
          <Field id="idleWarningSeconds" label="Warning before the timeout (seconds)" hint="When “Still there?” appears" error={errors.idleWarningSeconds}>
            {input('idleWarningSeconds', form.idleWarningSeconds, (n) => update((f) => ({ ...f, idleWarningSeconds: n })), { min: 0 })}
          </Field>
          <Field id="lifetimeSeconds" label="Lifetime (seconds)" hint="A session ends this long after sign-in, whatever its activity" error={errors.lifetimeSeconds}>
            {input('lifetimeSeconds', form.lifetimeSeconds, (n) => update((f) => ({ ...f, lifetimeSeconds: n })), { min: 60 })}
          </Field>
        </fieldset>

        <fieldset className="card">
          <legend className="card-title">Concurrent sessions</legend>
          <Field id="concurrentLimits.default" label="Sessions per user (default)" error={errors['concurrentLimits.default']}>
            {input('concurrentLimits.default', form.concurrentLimits.default, (n) => update((f) => ({ ...f, concurrentLimits: { ...f.concurrentLimits, default: n } })), { min: 1 })}
          </Field>
          {ROLES.map((role) => {
            const id = `concurrentLimits.byRole.${role}`
            const value = form.concurrentLimits.byRole[role]
            return (
              <Field key={role} id={id} label={`Sessions per ${role}`} hint="Empty: the default" error={errors[id]}>
                {input(id, value ?? Number.NaN, (n) =>
                  update((f) => {
                    const byRole = { ...f.concurrentLimits.byRole }
                    if (Number.isNaN(n)) delete byRole[role]
                    else byRole[role] = n
                    return { ...f, concurrentLimits: { ...f.concurrentLimits, byRole } }
                  }),
                )}
              </Field>
            )
          })}
          <Field id="concurrentLimits.byUser" label="Sessions per user, by user id" hint="One “user id = limit” per line" error={errors['concurrentLimits.byUser']}>
            <textarea
              id="concurrentLimits.byUser"
              className="input textarea"
              value={byUserText.limits}
              aria-invalid={errors['concurrentLimits.byUser'] ? true : undefined}
              onChange={(e) => setByUserText((t) => ({ ...t, limits: e.target.value }))}
            />
          </Field>
          <fieldset className="radio-group">
            <legend>When a user is at the limit</legend>
            <label className="check">
              <input type="radio" name="limitPolicy" value="terminate_oldest" checked={form.limitPolicy === 'terminate_oldest'} onChange={() => update((f) => ({ ...f, limitPolicy: 'terminate_oldest' }))} />
              End the least recently active session
            </label>
            <label className="check">
              <input type="radio" name="limitPolicy" value="block_new" checked={form.limitPolicy === 'block_new'} onChange={() => update((f) => ({ ...f, limitPolicy: 'block_new' }))} />
              Refuse the new sign-in (the user may pick a device to sign out)
            </label>
          </fieldset>
        </fieldset>

        <fieldset className="card">
          <legend className="card-title">Failed sign-ins</legend>
          <Field id="failedLogin.threshold" label="Failures that raise an alert" error={errors['failedLogin.threshold']}>
            {input('failedLogin.threshold', form.failedLogin.threshold, (n) => update((f) => ({ ...f, failedLogin: { ...f.failedLogin, threshold: n } })), { min: 1 })}
          </Field>
          <Field id="failedLogin.windowSeconds" label="Within (seconds)" error={errors['failedLogin.windowSeconds']}>
            {input('failedLogin.windowSeconds', form.failedLogin.windowSeconds, (n) => update((f) => ({ ...f, failedLogin: { ...f.failedLogin, windowSeconds: n } })), { min: 1 })}
          </Field>
          <label className="check">
            <input type="checkbox" checked={form.failedLogin.lockoutEnabled} onChange={(e) => update((f) => ({ ...f, failedLogin: { ...f.failedLogin, lockoutEnabled: e.target.checked } }))} />
            Lock the account when the threshold is reached
          </label>
          <Field id="failedLogin.lockoutSeconds" label="Lockout (seconds)" error={errors['failedLogin.lockoutSeconds']}>
            {input('failedLogin.lockoutSeconds', form.failedLogin.lockoutSeconds, (n) => update((f) => ({ ...f, failedLogin: { ...f.failedLogin, lockoutSeconds: n } })), { min: 1 })}
          </Field>
          <Field id="failedLogin.byUser" label="Threshold by user id" hint="One “user id = failures” per line" error={errors['failedLogin.byUser']}>
            <textarea id="failedLogin.byUser" className="input textarea" value={byUserText.failedLogin} onChange={(e) => setByUserText((t) => ({ ...t, failedLogin: e.target.value }))} />
          </Field>
        </fieldset>

        <fieldset className="card">
          <legend className="card-title">Anomalies</legend>
          <Field id="anomaly.distinctIps" label="Distinct IPs that flag a login" error={errors['anomaly.distinctIps']}>
            {input('anomaly.distinctIps', form.anomaly.distinctIps, (n) => update((f) => ({ ...f, anomaly: { ...f.anomaly, distinctIps: n } })), { min: 2 })}
          </Field>
          <Field id="anomaly.windowHours" label="Within (hours)" error={errors['anomaly.windowHours']}>
            {input('anomaly.windowHours', form.anomaly.windowHours, (n) => update((f) => ({ ...f, anomaly: { ...f.anomaly, windowHours: n } })), { min: 1 })}
          </Field>
        </fieldset>

        {errors.form && (
          <p className="notice notice-danger" role="alert">
            {errors.form}
          </p>
        )}
        <div className="row settings-actions">
          <button type="submit" className="button button-primary" disabled={busy}>
            {busy ? 'Saving…' : 'Save settings'}
          </button>
          <button type="button" className="button button-ghost" disabled={busy} onClick={() => take(saved)}>
            Undo changes
          </button>
        </div>
      </form>
    </section>
  )
}
