'use strict'
// Reference DHT nodes (@hyperswarm/dht 4.0.1 over dht-rpc 4.9.6), run inside
// a lab host only.
//   node js-dht.js bootstrap <port>          an ephemeral bootstrap node
//   node js-dht.js nodes <count> <bootstrap>  persistent members
// Reports { type: 'ready', ports } over IPC. Persistent members also report
// every node their routing table takes in ({ type: 'add-node', host, port })
// and answer { cmd: 'table' } with { type: 'table', ports }: the ports in
// all their routing tables now.
const dht = require('@hyperswarm/dht')
const [mode, a, b] = process.argv.slice(2)
const send = m => process.send && process.send(m)

if (mode === 'bootstrap') {
  // The documented way to run one: ephemeral, with an empty bootstrap list.
  const node = dht({ bootstrap: [], ephemeral: true })
  node.listen(Number(a), () => send({ type: 'ready', ports: [node.address().port] }))
} else {
  const count = Number(a)
  const nodes = []
  let ready = 0
  for (let i = 0; i < count; i++) {
    const node = dht({ bootstrap: [b], ephemeral: false })
    nodes.push(node)
    node.on('warning', () => {})
    node.on('add-node', n => send({ type: 'add-node', host: n.host, port: n.port }))
    node.listen(0, () => {
      node.once('ready', () => {
        if (++ready === count) send({ type: 'ready', ports: nodes.map(n => n.address().port) })
      })
    })
  }
  process.on('message', m => {
    if (m.cmd !== 'table') return
    const ports = new Set()
    for (const node of nodes) for (const n of node.bucket.toArray()) ports.add(n.port)
    send({ type: 'table', ports: [...ports] })
  })
}
setTimeout(() => process.exit(0), 10 * 60 * 1000).unref()
