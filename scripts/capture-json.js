'use strict'
// How the capture scripts write a decoded dht-rpc Message into a fixture:
// every bytes field as hex (null when absent), the rest as is.
const hex = (b) => (b == null ? null : Buffer.from(b).toString('hex'))

function jsonMessage (m) {
  return {
    version: m.version,
    type: m.type,
    rid: m.rid,
    to: hex(m.to),
    id: hex(m.id),
    target: hex(m.target),
    closerNodes: hex(m.closerNodes),
    roundtripToken: hex(m.roundtripToken),
    command: m.command,
    error: m.error,
    value: hex(m.value)
  }
}

module.exports = { hex, jsonMessage }
