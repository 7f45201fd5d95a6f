// What the session tells the user in passing: failed switches, sign-ins elsewhere.
import { useEffect } from 'react'
import { toast } from 'sonner'
import { useSession } from 'tessera/react'

export function useSessionToasts(): void {
  const { client } = useSession()
  useEffect(() => {
    const offFailed = client.on('switchFailed', ({ error }) => toast.error(`The platform was not switched: ${error.message}`))
    const offNotice = client.on('notice', (notice) => {
      const device = [notice.device.browser, notice.device.os].filter(Boolean).join(' on ') || 'an unknown device'
      if (notice.kind === 'new_login') toast.info(`New sign-in to your account: ${device}${notice.ip ? ` (${notice.ip})` : ''}`)
    })
    return () => {
      offFailed()
      offNotice()
    }
  }, [client])
}
