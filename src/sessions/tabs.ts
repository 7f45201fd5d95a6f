// The members of a session's tabs set (presence/ writes them; sessions/ counts them): one
// per open socket, `socketId|tabId`, so a tab counts once however many sockets it has.
/** One open socket of a tab, as presence knows it. */
export interface TabSocket {
  socketId: string
  tabId: string
}

/** The sorted-set member of one socket of a tab. Socket ids never contain `|`. */
export const tabMember = (s: TabSocket) => `${s.socketId}|${s.tabId}`

/** The tabId a member belongs to (members written before sockets had ids are bare tabIds). */
export const tabIdOf = (member: string) => member.slice(member.indexOf('|') + 1)
