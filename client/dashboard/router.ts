// In-page navigation: the page is in the hash (/admin#/history?user=ada), so a dashboard
// page opened in a new tab shows that page, and no page takes a path of the admin API.
import { useEffect, useState } from 'react'

export const PAGES = ['sessions', 'history', 'alerts', 'analytics', 'settings'] as const
export type Page = (typeof PAGES)[number]

export interface Route {
  page: Page
  /** What follows the page in the path: a session id for #/sessions/<id>. */
  id: string | null
  params: URLSearchParams
}

export function parseRoute(hash: string): Route {
  const [path = '', query = ''] = hash.replace(/^#\/?/, '').split('?')
  const [page, id] = path.split('/')
  return { page: (PAGES as readonly string[]).includes(page ?? '') ? (page as Page) : 'sessions', id: id || null, params: new URLSearchParams(query) }
}

export function href(page: Page, id?: string | null, params?: Record<string, string>): string {
  const query = params ? new URLSearchParams(params).toString() : ''
  return `#/${page}${id ? `/${id}` : ''}${query ? `?${query}` : ''}`
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash))
  useEffect(() => {
    const onChange = () => setRoute(parseRoute(location.hash))
    window.addEventListener('hashchange', onChange)
    return () => window.removeEventListener('hashchange', onChange)
  }, [])
  return route
}

export function navigate(to: string): void {
  location.hash = to
}
