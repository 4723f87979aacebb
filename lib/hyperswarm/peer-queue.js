'use strict'
// Which peer to dial next: one PeerInfo per peer address (and topic, unless
// multiplexing), drawn highest priority first and at random within a
// priority; failed peers come back after a backoff; given-up and banned
// peers are forgotten after a while. Also the de-duplication table
// (spec/api-network.md §4.4, §4.5).
const { EventEmitter } = require('events')
const { PeerInfo } = require('./peer-info')
const { BatchTimer, NEVER } = require('./batch-timer')
const { unmap } = require('../engine')

/** Backoff before retries 1, 2 and 3 (hyperswarm 2.15.3: 1 s, 5 s, 15 s). */
const REQUEUE = [1000, 5000, 15000]
/** When a peer that stopped answering is forgotten (hyperswarm 2.15.3). */
const FORGET_UNRESPONSIVE = 7500
/** When a banned peer is forgotten: never, by default. */
const FORGET_BANNED = Infinity
/** Most peers remembered at once; beyond it new ones are ignored (not in the reference, which grows without bound). */
const MAX_INFOS = 10000
// Discovery input comes from the network: one DHT reply may name 128 peers
// that do not exist. Peers not yet proven by a connection are capped per
// party, as the engine's own queue does (src/swarm/peer_queue.rs), so no one
// party can fill the queue and have real peers refused.
/** Unproven peers per host IP: one host runs a few swarms, a fake reply's 128 ports get 32. */
const MAX_PER_IP = 32
/** Unproven peers per IPv4 /24: twice the per-IP cap, so a LAN or a testnet fits. */
const MAX_PER_SUBNET = 64
/** Unproven peers per referring DHT node's IP: one full fake reply. */
const MAX_PER_REFERRER = 128

class PeerQueue extends EventEmitter {
  constructor (opts = {}) {
    super()
    const requeue = Array.isArray(opts.requeue) ? opts.requeue : []
    const delays = REQUEUE.map((ms, i) => requeue[i] == null ? ms : requeue[i]).concat(requeue.slice(REQUEUE.length))
    const forget = opts.forget || {}
    const unresponsive = forget.unresponsive == null ? FORGET_UNRESPONSIVE : forget.unresponsive
    const banned = forget.banned == null ? FORGET_BANNED : forget.banned
    this.destroyed = false
    this._multiplex = !!opts.multiplex
    this._infos = new Map()
    this._levels = [] // priority → PeerInfo[]
    this._queued = new Set()
    this._backoff = delays.map(ms => new BatchTimer(ms, batch => this._return(batch)))
    const forgetter = ms => ms < Infinity ? new BatchTimer(ms, batch => { for (const info of batch) this.remove(info.peer) }) : NEVER
    this._forget = { unresponsive: forgetter(unresponsive), banned: forgetter(banned) }
    this._dedup = new Map()
    this._unproven = new Map() // party → unproven peers it named
    this.refused = 0
  }

  get length () { return this._queued.size }

  /** Queued peers of priority 2 and up: the ones flush() waits for. */
  get prioritised () {
    let n = 0
    for (let p = 2; p < this._levels.length; p++) n += this._levels[p] ? this._levels[p].length : 0
    return n
  }

  /** A discovered peer: queued unless already known and waiting or busy. */
  add (peer) {
    if (this.destroyed) return
    const key = this._key(peer)
    let info = this._infos.get(key)
    const known = !!info
    if (!info) {
      if (this._infos.size >= MAX_INFOS) return
      const parties = partiesOf(peer)
      if (parties.some(([party, cap]) => (this._unproven.get(party) || 0) >= cap)) {
        this.refused++
        return
      }
      info = new PeerInfo(peer, this)
      info._parties = parties.map(([party]) => party)
      for (const party of info._parties) this._unproven.set(party, (this._unproven.get(party) || 0) + 1)
      this._infos.set(key, info)
    }
    if (peer.topic) info.topic(peer.topic)
    if (known && this._multiplex) return
    if (this._queued.has(info) || !info.update()) return
    this._enqueue(info)
  }

  /** The next peer to dial, marked active; null when none waits. */
  shift () {
    if (this.destroyed) return null
    for (let p = this._levels.length - 1; p >= 0; p--) {
      const level = this._levels[p]
      if (!level || !level.length) continue
      const i = Math.floor(Math.random() * level.length)
      const info = level[i]
      level[i] = level[level.length - 1]
      level.pop()
      this._queued.delete(info)
      info.active(true)
      return info
    }
    return null
  }

  /** After a failed dial or a dropped connection: back off, or give up. */
  requeue (info) {
    if (this.destroyed) return false
    const step = info.requeue()
    if (step === -1) {
      (info.banned ? this._forget.banned : this._forget.unresponsive).push(info)
      return false
    }
    this._backoff[Math.min(step, this._backoff.length - 1)].push(info)
    return true
  }

  remove (peer) {
    if (this.destroyed) return
    const key = this._key(peer)
    const info = this._infos.get(key)
    if (!info) return
    info.destroy()
    this._dequeue(info)
    this._infos.delete(key)
    this._proven(info)
  }

  /** A peer connected (or was forgotten): it no longer counts against its parties. */
  _proven (info) {
    if (!info._parties) return
    for (const party of info._parties) {
      const n = this._unproven.get(party) - 1
      if (n > 0) this._unproven.set(party, n)
      else this._unproven.delete(party)
    }
    info._parties = null
  }

  deduplicate (localId, remoteId, info) {
    if (!Buffer.isBuffer(localId)) throw new TypeError('localId must be a Buffer')
    if (!Buffer.isBuffer(remoteId)) throw new TypeError('remoteId must be a Buffer')
    if (!info.stream) return false
    const key = localId.toString('hex') + '/' + remoteId.toString('hex')
    const order = Buffer.compare(localId, remoteId)
    info._dedupKey = key
    if (order === 0) {
      info.destroy(new Error('Connected to self'))
      return true
    }
    const first = this._dedup.get(key)
    if (!first || first === info) {
      this._dedup.set(key, info)
      return false
    }
    // Both sides must pick the same survivor without talking: TCP beats
    // uTP; between equals, the connection the smaller id dialled wins.
    let keepNew
    if (first.type !== info.type) keepNew = first.type === 'utp'
    else keepNew = order < 0 ? info.client : !info.client
    const [winner, loser] = keepNew ? [info, first] : [first, info]
    this._drop(winner, loser, key)
    return loser === info
  }

  _drop (winner, loser, key) {
    loser.duplicate = true
    loser.emit('duplicate')
    this._dedup.set(key, winner)
    // A losing incoming connection is only marked: its dialler ends it.
    if (!loser.client) return
    loser.ban(true)
    // Once the survivor is gone the loser may be dialled again, last.
    winner.stream.once('close', () => {
      if (winner.banned || this.destroyed) return
      if (this._infos.get(this._key(loser.peer)) !== loser) return
      this.remove(loser.peer)
      this.add(loser.peer)
    })
  }

  _disconnected (info) {
    if (info._dedupKey && this._dedup.get(info._dedupKey) === info) this._dedup.delete(info._dedupKey)
  }

  destroy () {
    if (this.destroyed) return
    this.destroyed = true
    for (const t of this._backoff) t.destroy()
    this._forget.unresponsive.destroy()
    this._forget.banned.destroy()
    this._infos.clear()
    this._unproven.clear()
    this._levels = []
    this._queued.clear()
  }

  _return (batch) {
    if (this.destroyed) return
    for (const info of batch) {
      info.active(false)
      if (!info.update()) {
        (info.banned ? this._forget.banned : this._forget.unresponsive).push(info)
        continue
      }
      if (!this._queued.has(info)) this._enqueue(info)
    }
  }

  _enqueue (info) {
    const wasEmpty = this._queued.size === 0
    const level = this._levels[info.priority] || (this._levels[info.priority] = [])
    level.push(info)
    this._queued.add(info)
    if (wasEmpty) this.emit('readable')
  }

  _dequeue (info) {
    if (!this._queued.delete(info)) return
    for (const level of this._levels) {
      const i = level ? level.indexOf(info) : -1
      if (i !== -1) {
        level.splice(i, 1)
        return
      }
    }
  }

  // `::ffff:a.b.c.d` and `a.b.c.d` are one peer (upstream hyperswarm #75).
  _key (peer) {
    const base = unmap(peer.host) + ':' + peer.port
    if (this._multiplex || !peer.topic) return base
    return base + '@' + peer.topic.toString('hex')
  }
}

// The parties behind a discovered peer, each with its cap.
function partiesOf (peer) {
  const host = unmap(peer.host)
  const v4 = /^(\d+\.\d+\.\d+)\.\d+$/.exec(host)
  const parties = [['ip:' + host, MAX_PER_IP], ['net:' + (v4 ? v4[1] : host), MAX_PER_SUBNET]]
  if (peer.referrer && peer.referrer.host) parties.push(['ref:' + unmap(peer.referrer.host), MAX_PER_REFERRER])
  return parties
}

module.exports = { PeerQueue, REQUEUE, FORGET_UNRESPONSIVE, FORGET_BANNED, MAX_INFOS, MAX_PER_IP, MAX_PER_SUBNET, MAX_PER_REFERRER }
