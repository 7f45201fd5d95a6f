// The realtime feature's Redis keys (the shared prefix and tags are in infra/keys.ts).
import type { InfraKeys } from '../infra/keys.js'

export function realtimeKeys({ prefix }: InfraKeys) {
  return {
    /** one-use realtime tickets already spent */
    usedTicket: (jti: string) => `${prefix}ticket:${jti}`,
  }
}

export type RealtimeKeys = ReturnType<typeof realtimeKeys>
