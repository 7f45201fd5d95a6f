// Alerts: the unacknowledged ones at start, then each new one live (admin.alert).
import { useCallback, useEffect, useState } from 'react'
import type { Alert } from 'tessera/client'
import { useSession } from 'tessera/react'

export interface Alerts {
  items: Alert[]
  unacknowledged: number
  acknowledge(id: number): Promise<void>
  loadAll(): Promise<void>
}

export function useAlerts(): Alerts {
  const { client } = useSession()
  const [items, setItems] = useState<Alert[]>([])

  const merge = useCallback((incoming: Alert[]) => {
    setItems((current) => {
      const byId = new Map(current.map((a) => [a.id, a]))
      for (const alert of incoming) byId.set(alert.id, alert)
      return [...byId.values()].sort((a, b) => b.id - a.id)
    })
  }, [])

  const loadAll = useCallback(async () => {
    const page = await client.request<{ items: Alert[] }>('GET', '/admin/alerts?limit=200')
    merge(page.items)
  }, [client, merge])

  useEffect(() => {
    void client.request<{ items: Alert[] }>('GET', '/admin/alerts?acknowledged=false&limit=200').then((page) => merge(page.items), () => {})
    const off = client.on('admin', (message) => {
      if (message.type === 'admin.alert') merge([message.alert])
    })
    return off
  }, [client, merge])

  const acknowledge = useCallback(
    async (id: number) => {
      merge([await client.request<Alert>('POST', `/admin/alerts/${id}/ack`)])
    },
    [client, merge],
  )

  return { items, unacknowledged: items.filter((a) => !a.acknowledged).length, acknowledge, loadAll }
}
