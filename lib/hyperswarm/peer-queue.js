'use strict'
// The ./hyperswarm entry's dial queue: the engine's own queue
// (src/swarm/peer_queue.rs, with hyperswarm 2.x's policy) driven from JS,
// because this entry dials through the network layer as the reference
// does. Which peer comes next, backoff, bans, forgetting and the per-party
// caps are decided there; this wrapper keeps the PeerInfo objects users
// hold, one timer for the queue's next deadline, and de-duplication, which
// needs the streams (spec/api-network.md §4.4, §4.5).
const { EventEmitter } = require('events')
const { PeerInfo } = require('./peer-info')
const { NativePeerQueue, toNativePeer } = require('../engine')
const { MAX_INFOS, MAX_PER_IP, MAX_PER_SUBNET, MAX_PER_REFERRER } = require('../constants')

class PeerQueue extends EventEmitter {
  constructor (opts = {}) {
    super()
    const forget = opts.forget || {}
    const options = { multiplex: !!opts.multiplex }
    if (Array.isArray(opts.requeue)) options.requeue = opts.requeue
    if (forget.unresponsive != null) options.forgetUnresponsive = forget.unresponsive
    if (forget.banned != null) options.forgetBanned = forget.banned
    this.destroyed = false
    this._native = new NativePeerQueue(options)
    this._t0 = Date.now()
    this._infos = new Map() // entry id → PeerInfo
    this._timer = null
    this._dedup = new Map()
  }

  /** Peers waiting to be dialled now. */
  get length () { return this.destroyed ? 0 : this._native.queued }
  /** Queued peers of priority 2 and up: the ones flush() waits for. */
  get prioritised () { return this.destroyed ? 0 : this._native.prioritised }
  /** Peers refused by the per-party caps or a full table. */
  get refused () { return this._native.refused }

  /** A discovered peer: queued unless already known and waiting or busy. */
  add (peer) {
    if (this.destroyed) return
    const wasEmpty = this._native.queued === 0
    const r = this._native.add(this._now(), toNativePeer(peer))
    if (r.id == null) return
    let info = this._infos.get(r.id)
    if (!info) {
      info = new PeerInfo(peer, this, r.id)
      this._infos.set(r.id, info)
    }
    if (r.newTopic && peer.topic) info._addTopic(peer.topic)
    // Adding sets no deadline (a requeued entry only loses one; the timer
    // then finds nothing and re-arms), so the timer is left as it is.
    this._reap()
    if (r.queued && wasEmpty) this.emit('readable')
  }

  /** The next peer to dial, marked active; null when none waits. */
  shift () {
    if (this.destroyed) return null
    const id = this._native.shift(this._now())
    this._reap()
    if (id == null) return null
    return this._infos.get(id) || null
  }

  /** After a failed dial or a dropped connection: back off, or give up. */
  requeue (info) {
    if (this.destroyed || info._id == null) return false
    const again = this._native.requeue(this._now(), info._id)
    this._schedule()
    return again
  }

  remove (peer) {
    if (this.destroyed) return
    const id = this._native.remove(toNativePeer(peer))
    if (id == null) return
    const info = this._infos.get(id)
    this._infos.delete(id)
    if (info) info._forgotten()
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
      if (this._infos.get(loser._id) !== loser) return
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
    clearTimeout(this._timer)
    this._timer = null
    this._infos.clear()
    this._dedup.clear()
  }

  // The queue's clock: milliseconds since it was made (Date, so tests can mock it).
  _now () { return Math.max(0, Date.now() - this._t0) }

  // One timer for the queue's next backoff or forget deadline. It never
  // keeps the process alive: only the engine does.
  _schedule () {
    const at = this._native.pollTimeout()
    clearTimeout(this._timer)
    this._timer = null
    if (at == null || this.destroyed) return
    this._timer = setTimeout(() => this._ontimeout(), Math.max(0, at - this._now()))
    this._timer.unref()
  }

  _ontimeout () {
    this._timer = null
    if (this.destroyed) return
    const readable = this._native.handleTimeout(this._now())
    this._reap()
    this._schedule()
    if (readable) this.emit('readable')
  }

  // Entries the engine forgot: their PeerInfo objects go too.
  _reap () {
    for (const id of this._native.takeForgotten()) {
      const info = this._infos.get(id)
      this._infos.delete(id)
      if (info) info._forgotten()
    }
  }
}

module.exports = { PeerQueue, MAX_INFOS, MAX_PER_IP, MAX_PER_SUBNET, MAX_PER_REFERRER }
