// Compiled with `tsc --noEmit` by __test__/types.test.js: the generated
// binding.d.ts types the addon's events as unions tagged by `kind`, so
// narrowing on the tag gives exactly that kind's fields, and a field of
// another kind does not type-check.
import type { NativeEvent, NativeStream, DhtNativeEvent } from '../../binding'

function describeStream (stream: NativeStream): string {
  // `transport` narrows too: a descriptor for TCP, an address for uTP.
  if (stream.transport === 'tcp') return `fd ${stream.fd}`
  return `${stream.remoteHost}:${stream.remotePort} ${stream.peerNatType ?? ''}`
}

function ondht (ev: DhtNativeEvent): string {
  switch (ev.kind) {
    case 'data': return `${ev.request} ${ev.from.host} ${ev.peers.length} ${ev.localPeers.length}`
    case 'failed': return ev.error
    case 'done': return ev.error ?? 'ok'
    case 'got': return String(ev.record.value)
    case 'put': return ev.key.toString('hex')
    case 'pong': return `${ev.from.port}`
    case 'holepunch': return `${ev.from.host} ${ev.to.host}`
    default: return ev.kind
  }
}

export function onevent (ev: NativeEvent): string {
  switch (ev.kind) {
    case 'listening': return String(ev.port)
    case 'connected': return `${ev.request} ${ev.id} ${ev.peer.host} ${describeStream(ev.stream)}`
    case 'connection': return `${ev.client} ${ev.peer ? ev.peer.host : 'incoming'} ${describeStream(ev.stream)}`
    case 'connect-failed': return `${ev.request} ${ev.code} ${ev.message}`
    case 'pinged': return ev.pongs.map(p => `${p.host}:${p.port} ${p.rtt}`).join()
    case 'data': return ev.data.toString()
    case 'dht': return ondht(ev.dht)
    default: return ev.kind
  }
}

export function misuse (ev: NativeEvent, dht: DhtNativeEvent): void {
  if (ev.kind === 'listening') {
    // @ts-expect-error a listening event carries its port only
    console.log(ev.fd)
  }
  if (ev.kind === 'connected') {
    // @ts-expect-error a connected event's descriptor is in its stream, for TCP only
    console.log(ev.stream.fd)
    // @ts-expect-error success carries no error message
    console.log(ev.message)
  }
  if (ev.kind === 'connect-failed') {
    // @ts-expect-error a failed connect has no stream
    console.log(ev.stream)
  }
  if (dht.kind === 'pong') {
    // @ts-expect-error a pong is no store answer
    console.log(dht.record)
  }
  // @ts-expect-error kinds are a closed set
  if (ev.kind === 'connect-error') console.log(ev)
}
