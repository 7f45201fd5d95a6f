// The alerts feature's Redis keys (the shared prefix and tags are in infra/keys.ts).
import type { InfraKeys } from '../infra/keys.js'

export function alertKeys({ prefix }: InfraKeys) {
  return {
    /** an open alert window of one type and user (TTL: the window): a second raise within it is a no-op */
    alertWindow: (subject: string) => `${prefix}alert-window:${subject}`,
  }
}

export type AlertKeys = ReturnType<typeof alertKeys>
