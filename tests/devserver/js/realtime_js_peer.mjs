// realtime-js as a peer of the local Realtime server (tests/devserver/test_devserver_realtime_js.py).
// Usage: node realtime_js_peer.mjs <ws url> <api key>
// Prints one JSON object per line for each thing it sees; exits 0 on the "bye" broadcast.
import { RealtimeClient } from '@supabase/realtime-js'

const [url, key] = process.argv.slice(2)
const say = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')
const client = new RealtimeClient(url, { params: { apikey: key } })
const channel = client.channel('room1', {
  config: { broadcast: { self: false, ack: true }, presence: { key: 'js-peer' } },
})

channel
  .on('broadcast', { event: 'to-js' }, (message) => say({ kind: 'broadcast', message }))
  .on('broadcast', { event: 'bye' }, async () => {
    await client.removeAllChannels()
    client.disconnect()
    say({ kind: 'bye' })
    process.exit(0)
  })
  .on(
    'postgres_changes',
    { event: 'INSERT', schema: 'public', table: 'todos', filter: 'id=eq.1' },
    (change) => say({ kind: 'change', change }),
  )
  .on('presence', { event: 'sync' }, () => say({ kind: 'sync', state: channel.presenceState() }))
  .on('system', {}, (payload) => say({ kind: 'system', payload }))
  .subscribe(async (status, err) => {
    say({ kind: 'status', status, error: err ? String(err) : null })
    if (status !== 'SUBSCRIBED') return
    const json = await channel.send({ type: 'broadcast', event: 'from-js', payload: { a: 1 } })
    const raw = new Uint8Array([1, 2, 3]).buffer
    const binary = await channel.send({ type: 'broadcast', event: 'bin', payload: raw })
    const tracked = await channel.track({ online: true })
    say({ kind: 'sent', json, binary, tracked })
  })

setTimeout(() => {
  say({ kind: 'timeout' })
  process.exit(2)
}, 30000)
