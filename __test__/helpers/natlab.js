'use strict'
// The NAT lab: a "public" network (a bridge in its own namespace carrying
// three documentation /24s, 203.0.113.0/24, 198.51.100.0/24 and
// 192.0.2.0/24, that only exist inside our namespaces) with reference DHT
// nodes on three hosts, one per /24 (a NAT type is only decided when nodes
// from several /24s agree), and per peer either a public host on that
// bridge or a home behind a NAT router:
//
//   dht1 198.51.100.1 ┐
//   dht2 192.0.2.1    ┤
//   boot 203.0.113.1 ─┤
//   p0   203.0.113.10 ┼─ br0 (namespace "pub")
//   r1   203.0.113.11 ┘ wan0 │ router r1, nftables NAT
//                       lan0 │ 10.2.0.1/24
//                       eth0 │ home h1 10.2.0.2, default route via r1
//
// With `transit: true` every router reaches the bridge through an ISP hop
// of its own (namespace i<n>, a plain forwarding router that answers ARP
// for its router's public address on the bridge, and for the bridge on the
// router's side), so two homes are five hops apart, as on the internet
// they are many:
//
//   home h1 ─ r1 (NAT) ─ i1 (ISP, 100.64.0.2) ─ br0 ─ i2 ─ r2 (NAT) ─ home h2
//
// A datagram a home sends with TTL 2 or 3 then crosses its own NAT (and
// makes its mapping there) but expires before the other side's router: the
// lab for low-TTL opening packets. Without it the routers share the bridge,
// and anything that leaves one router reaches the other.
//
// Router kinds (nftables in the router namespace, forwarding on):
//   cone       endpoint-independent mapping: `masquerade` keeps the source
//              port when it is free; filtering is conntrack's (only replies
//              to flows the home opened come in); unsolicited packets to the
//              router itself are dropped, as home routers' WAN firewalls do.
//   symmetric  endpoint-dependent mapping: `masquerade fully-random` (nft's
//              spelling of random-fully), a fresh random port per flow;
//              same filtering.
//   same-nat   not a router: a second home behind the previous peer's
//              router, on a LAN segment of its own (lan1, 10.<n>.1.0/24;
//              the router forwards between its LANs). Both homes share one
//              public IP, and the router does no hairpin NAT: each can reach
//              the other only at its LAN address.
//   cone-nofw  `cone` without the WAN input drop. A stray packet to a mapped
//              port (the first hole-punch packet from the other side, say)
//              then becomes a conntrack entry of its own, and the home's
//              reply to that same address is masqueraded to another port:
//              the mapping stops being endpoint-independent exactly when a
//              hole punch needs it to be. Kept to measure that behaviour.
//
// API: `await NatLab.create({ peers: ['public', 'cone', ...], transit })` → lab with
// `bootstrap` ('203.0.113.1:49737'), `peers` [{ ns, kind, ip, publicIp,
// host }], `spawn(i, script, args, opts)` (inside peer i's host),
// `spawnAt`/`execAt` by host name ('boot', 'peer<i>', 'router<i>'),
// `udp(host, port)`, `conntrack(i)`, `destroy()`.
//
// Every namespace goes through netns.js's Lab (so its exit handler deletes
// them); this file only adds the topology. Run as a script, it is a tiny
// UDP tool for probing the lab (see `udpTool` at the bottom).
const { execFileSync } = require('child_process')
const path = require('path')
const { Lab } = require('./netns')

const PUBLIC_PREFIX = '203.0.113.'
const BOOT_IP = PUBLIC_PREFIX + '1'
const BOOT_PORT = 49737
/** The hosts that run reference DHT members, one per /24: the bootstrap
 * host and two more. Every host on the bridge routes every /24 on-link. */
const DHT_HOSTS = [['boot', BOOT_IP], ['dht1', '198.51.100.1'], ['dht2', '192.0.2.1']]
const KINDS = ['public', 'cone', 'symmetric', 'cone-nofw', 'same-nat']
/** The ISP hops' own addresses (`transit: true`): shared address space
 * (RFC 6598), outside every /24 the lab's hosts and DHT members use; an
 * ISP has one only to send ARP requests and ICMP errors from. */
const ISP_PREFIX = '100.64.0.'
const JS_DHT = path.join(__dirname, 'js-dht.js')
const liveLabs = new Set() // netns Labs not yet destroyed

function run (args, opts = {}) {
  return execFileSync(args[0], args.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], timeout: 10000, ...opts }).toString()
}
const ipn = (ns, ...args) => run(['ip', '-n', ns, ...args])
const nsExec = (ns, args, opts) => run(['ip', 'netns', 'exec', ns, ...args], opts)

function routerRules (kind) {
  const masquerade = kind === 'symmetric' ? 'masquerade fully-random' : 'masquerade'
  const inputDrop = kind === 'cone-nofw' ? '' : '    iifname "wan0" ct state new,invalid drop'
  // Chain names avoid nft keywords (`forward`, `fwd`, `input` are taken).
  return [
    'table ip natlab {',
    '  chain postnat {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    `    oifname "wan0" ${masquerade}`,
    '  }',
    '  chain through {',
    '    type filter hook forward priority filter; policy drop;',
    '    ct state established,related accept',
    '    iifname "lan*" oifname "wan0" accept',
    '    iifname "lan*" oifname "lan*" accept',
    '  }',
    '  chain toself {',
    '    type filter hook input priority filter; policy accept;',
    inputDrop,
    '  }',
    '}',
    ''
  ].join('\n')
}

class NatLab {
  /**
   * Builds the topology and (unless `dht: false`) starts the reference DHT:
   * one ephemeral bootstrap node on boot:49737 and `dht.nodes` persistent
   * nodes spread round-robin over the three DHT hosts (DHT_HOSTS), so that
   * four or more put members in three /24s (`dht.hosts: 1` keeps them all
   * on the bootstrap host, one /24). Resolves to the lab.
   *   peers: kinds, one per peer ('public' | 'cone' | 'symmetric' | 'cone-nofw')
   *   transit: put an ISP hop between every router and the bridge (see
   *     the header)
   */
  static async create ({ peers = [], dht = { nodes: 4 }, transit = false } = {}) {
    const lab = new NatLab()
    lab.transit = !!transit
    try {
      lab._build(peers)
      if (dht) await lab._startDht(dht.nodes == null ? 4 : dht.nodes, dht.hosts || DHT_HOSTS.length)
    } catch (err) {
      await lab.destroy()
      throw err
    }
    return lab
  }

  constructor () {
    this.lab = new Lab()
    liveLabs.add(this.lab)
    this.bootstrap = `${BOOT_IP}:${BOOT_PORT}`
    this.bootIp = BOOT_IP
    this.peers = []
    this._index = new Map() // host name → index in this.lab.hosts
  }

  _host (name, ns, ip) {
    this._index.set(name, this.lab.hosts.length)
    this.lab.hosts.push({ ns, ip, name })
  }

  // A namespace with `ifname` plugged into the public bridge at `ip`.
  _plug (sw, port, name, ip, ifname = 'eth0') {
    const ns = this.lab._ns(name)
    ipn(sw, 'link', 'add', port, 'type', 'veth', 'peer', 'name', ifname, 'netns', ns)
    ipn(sw, 'link', 'set', port, 'master', 'br0', 'up')
    ipn(ns, 'addr', 'add', ip + '/24', 'dev', ifname)
    ipn(ns, 'link', 'set', ifname, 'up')
    ipn(ns, 'link', 'set', 'lo', 'up')
    // The bridge carries several /24s: reach them all directly (ARP), as
    // if the internet were one link.
    ipn(ns, 'route', 'add', 'default', 'dev', ifname)
    return ns
  }

  _build (kinds) {
    for (const k of kinds) if (!KINDS.includes(k)) throw new TypeError(`unknown peer kind ${k} (one of ${KINDS.join(', ')})`)
    if (kinds.length > 200) throw new RangeError('at most 200 peers')
    const sw = this.lab._ns('pub')
    ipn(sw, 'link', 'add', 'br0', 'type', 'bridge')
    ipn(sw, 'link', 'set', 'br0', 'up')
    DHT_HOSTS.forEach(([name, ip], k) => this._host(name, this._plug(sw, 'vb' + k, name, ip), ip))

    kinds.forEach((kind, i) => {
      if (kind === 'same-nat') return this._behindPrevious(i)
      const publicIp = PUBLIC_PREFIX + (10 + i)
      if (kind === 'public') {
        const ns = this._plug(sw, 'v' + i, 'p' + i, publicIp)
        this._host('peer' + i, ns, publicIp)
        this.peers.push({ ns, kind, ip: publicIp, publicIp, host: 'peer' + i })
        return
      }
      const lan = `10.${i + 1}.0.`
      const router = this.transit ? this._isp(sw, i, publicIp) : this._plug(sw, 'v' + i, 'r' + i, publicIp, 'wan0')
      const home = this.lab._ns('h' + i)
      ipn(router, 'link', 'add', 'lan0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', home)
      ipn(router, 'addr', 'add', lan + '1/24', 'dev', 'lan0')
      ipn(router, 'link', 'set', 'lan0', 'up')
      ipn(home, 'addr', 'add', lan + '2/24', 'dev', 'eth0')
      ipn(home, 'link', 'set', 'eth0', 'up')
      ipn(home, 'link', 'set', 'lo', 'up')
      ipn(home, 'route', 'add', 'default', 'via', lan + '1')
      nsExec(router, ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1'])
      nsExec(router, ['nft', '-f', '-'], { input: routerRules(kind) })
      this._host('peer' + i, home, lan + '2')
      this._host('router' + i, router, publicIp)
      this.peers.push({ ns: home, kind, ip: lan + '2', publicIp, router, host: 'peer' + i })
    })
  }

  // Router i's namespace with wan0 at `publicIp`, reaching the bridge
  // through ISP namespace i<i>. The router still sees every /24 on-link
  // (default dev wan0) and so do the bridge's hosts: the ISP answers ARP on
  // both sides for what it routes to the other (proxy ARP, at once rather
  // than after the kernel's random proxy delay).
  _isp (sw, i, publicIp) {
    const isp = this.lab._ns('i' + i)
    ipn(sw, 'link', 'add', 'v' + i, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', isp)
    ipn(sw, 'link', 'set', 'v' + i, 'master', 'br0', 'up')
    const router = this.lab._ns('r' + i)
    ipn(isp, 'link', 'add', 'down0', 'type', 'veth', 'peer', 'name', 'wan0', 'netns', router)
    ipn(isp, 'addr', 'add', ISP_PREFIX + (i + 2) + '/32', 'dev', 'eth0')
    for (const dev of ['lo', 'eth0', 'down0']) ipn(isp, 'link', 'set', dev, 'up')
    ipn(isp, 'route', 'add', publicIp + '/32', 'dev', 'down0')
    ipn(isp, 'route', 'add', 'default', 'dev', 'eth0')
    const sysctls = ['net.ipv4.ip_forward=1']
    for (const dev of ['eth0', 'down0']) sysctls.push(`net.ipv4.conf.${dev}.proxy_arp=1`, `net.ipv4.neigh.${dev}.proxy_delay=0`)
    nsExec(isp, ['sysctl', '-q', '-w', ...sysctls])
    ipn(router, 'addr', 'add', publicIp + '/24', 'dev', 'wan0')
    ipn(router, 'link', 'set', 'wan0', 'up')
    ipn(router, 'link', 'set', 'lo', 'up')
    ipn(router, 'route', 'add', 'default', 'dev', 'wan0')
    this._host('isp' + i, isp, ISP_PREFIX + (i + 2))
    return router
  }

  // Peer i shares peer i-1's router, on a second LAN segment.
  _behindPrevious (i) {
    const prev = this.peers[i - 1]
    if (!prev || !prev.router) throw new TypeError('same-nat must follow a peer behind a router')
    const lan = prev.ip.replace(/\.0\.2$/, '.1.')
    const home = this.lab._ns('h' + i)
    ipn(prev.router, 'link', 'add', 'lan1', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', home)
    ipn(prev.router, 'addr', 'add', lan + '1/24', 'dev', 'lan1')
    ipn(prev.router, 'link', 'set', 'lan1', 'up')
    ipn(home, 'addr', 'add', lan + '2/24', 'dev', 'eth0')
    ipn(home, 'link', 'set', 'eth0', 'up')
    ipn(home, 'link', 'set', 'lo', 'up')
    ipn(home, 'route', 'add', 'default', 'via', lan + '1')
    this._host('peer' + i, home, lan + '2')
    this._host('router' + i, prev.router, prev.publicIp)
    this.peers.push({ ns: home, kind: 'same-nat', ip: lan + '2', publicIp: prev.publicIp, router: prev.router, host: 'peer' + i })
  }

  async _startDht (nodes, hostCount) {
    const hosts = DHT_HOSTS.slice(0, hostCount)
    const boot = this.spawnAt('boot', JS_DHT, ['bootstrap', String(BOOT_PORT)], { timeoutMs: 10 * 60000 })
    await boot.wait('ready', 15000)
    // Members per host, round-robin from the bootstrap host: 4 → 2, 1, 1.
    const counts = hosts.map((_, k) => Math.floor(nodes / hosts.length) + (k < nodes % hosts.length ? 1 : 0))
    this.dhtMembers = []
    await Promise.all(hosts.map(async ([name, ip], k) => {
      if (counts[k] === 0) return
      const members = this.spawnAt(name, JS_DHT, ['nodes', String(counts[k]), this.bootstrap], { timeoutMs: 10 * 60000 })
      for (const port of (await members.wait('ready', 30000)).ports) this.dhtMembers.push(`${ip}:${port}`)
    }))
  }

  /** Host names: 'boot', 'dht1', 'dht2', 'peer<i>' (the home or public host), 'router<i>', 'isp<i>' (`transit`). */
  hostIndex (name) {
    const i = this._index.get(name)
    if (i === undefined) throw new Error('no lab host ' + name)
    return i
  }

  /** `node script ...args` inside peer `i`'s host (the home behind its router, or the public host). */
  spawn (i, script, args = [], opts) {
    return this.spawnAt('peer' + i, script, args, opts)
  }

  spawnAt (name, script, args = [], opts) {
    return this.lab.spawn(this.hostIndex(name), script, args, opts)
  }

  exec (i, args, opts) {
    return this.execAt('peer' + i, args, opts)
  }

  execAt (name, args, opts) {
    return this.lab.exec(this.hostIndex(name), args, opts)
  }

  /** A UDP tool (see udpTool) bound to `port` on host `name`. */
  udp (name, port) {
    return this.spawnAt(name, __filename, ['udp', String(port)], { timeoutMs: 120000 })
  }

  /** Router `i`'s conntrack table as text, for diagnostics ('' if the kernel has no procfs view). */
  conntrack (i) {
    try { return this.execAt('router' + i, ['cat', '/proc/net/nf_conntrack']) } catch { return '' }
  }

  async destroy () {
    await this.lab.destroy()
    liveLabs.delete(this.lab)
  }
}

// `ip netns add` namespaces and the processes in them outlive a killed test
// process. On exit, kill every live lab's children (netns.js's own exit
// handler then deletes the namespaces), and turn the usual stop signals
// into an exit.
if (require.main !== module) {
  process.on('exit', () => {
    for (const lab of liveLabs) for (const child of lab.children) child.proc.kill('SIGKILL')
  })
  for (const [sig, n] of [['SIGHUP', 1], ['SIGINT', 2], ['SIGTERM', 15]]) {
    if (process.listenerCount(sig) === 0) process.once(sig, () => process.exit(128 + n))
  }
}

/**
 * `node natlab.js udp <port>`: one UDP socket, driven over IPC.
 * Reports { type: 'ready', port }, and { type: 'datagram', data, from, port }
 * for every datagram; a datagram starting with "echo" is answered with
 * "seen <address>:<port>" (its source as this host sees it).
 * Command { cmd: 'send', host, port, data, id, ttl? } → { type: 'sent', id, error }.
 */
function udpTool (port) {
  const dgram = require('dgram')
  const send = m => process.send && process.send(m)
  const sock = dgram.createSocket('udp4')
  sock.on('message', (buf, rinfo) => {
    const data = buf.toString()
    send({ type: 'datagram', data, from: rinfo.address, port: rinfo.port })
    if (data.startsWith('echo')) sock.send(`seen ${rinfo.address}:${rinfo.port}`, rinfo.port, rinfo.address)
  })
  sock.on('error', err => send({ type: 'error', message: err.message }))
  process.on('message', m => {
    if (m.cmd === 'send') {
      // `ttl`: this datagram leaves with that IP TTL; the option is back
      // to 64 once it is sent (dgram resolves the host first, so not
      // before the callback). Callers wait for 'sent' before the next send.
      if (m.ttl) sock.setTTL(m.ttl)
      sock.send(m.data, m.port, m.host, err => {
        if (m.ttl) sock.setTTL(64)
        send({ type: 'sent', id: m.id, error: err ? err.code : null })
      })
    }
    if (m.cmd === 'exit') process.exit(0)
  })
  process.on('disconnect', () => process.exit(0))
  sock.bind(port, () => send({ type: 'ready', port: sock.address().port }))
  setTimeout(() => process.exit(0), 120000).unref()
}

if (require.main === module) {
  const [mode, port] = process.argv.slice(2)
  if (mode !== 'udp') throw new Error('usage: natlab.js udp <port>')
  udpTool(Number(port))
}

module.exports = { NatLab, KINDS, BOOT_PORT, DHT_HOSTS }
