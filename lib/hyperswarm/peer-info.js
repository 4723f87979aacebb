'use strict'
// What the ./hyperswarm swarm tells users about one peer (or one incoming
// connection): a view of its entry in the engine's dial queue (status
// bits, priority, retries: src/swarm/peer_queue.rs), plus the stream and
// topics (spec/api-network.md §4.3).
const { EventEmitter } = require('events')

/** Status bits, as hyperswarm 2.x numbers them (the engine keeps them; these name them). */
const PROVEN = 1
const RECONNECT = 2
const BANNED = 4
const FIREWALLED = 32

/** The id used when deduplicate() is given no local id. */
const NO_ID = Buffer.alloc(32)

class PeerInfo extends EventEmitter {
  /**
   * `peer`: the discovery peer we may dial, with `queue` and its entry
   * `id`; or null (with no queue entry) for an incoming connection.
   */
  constructor (peer, queue, id = null) {
    super()
    this.peer = peer
    this.client = peer !== null
    this.stream = null
    this.duplicate = false
    this.topics = []
    this._queue = queue
    this._id = id
    this._dedupKey = null
    // An incoming connection has no queue entry: its own bits. A queued
    // peer's last view, kept once the queue forgot it.
    this._last = { status: RECONNECT | FIREWALLED, priority: 2, retries: 0 }
  }

  _view () {
    if (this._id == null || !this._queue || this._queue.destroyed) return this._last
    return (this._last = this._queue._native.view(this._id) || this._last)
  }

  get status () { return this._view().status }
  get priority () { return this._view().priority }
  get retries () { return this._view().retries }
  get prioritised () { return this.priority >= 2 }
  get type () { return this.status & FIREWALLED ? 'utp' : 'tcp' }
  get firewalled () { return (this.status & FIREWALLED) !== 0 }
  get banned () { return (this.status & BANNED) !== 0 }

  /**
   * Once both sides have swapped ids: drops this connection if another one
   * to the same remote id is the better one. True if this one was dropped.
   */
  deduplicate (localId, remoteId = NO_ID) {
    if (!this._queue) return false
    return this._queue.deduplicate(localId, remoteId, this)
  }

  /** Counts a failed attempt (clients only); false once the peer is given up. */
  backoff () {
    if (!this.client) return
    if (!this._live()) return false
    const again = this._queue._native.backoff(this._queue._now(), this._id)
    // Given up: its forget delay needs the queue's timer.
    this._queue._schedule()
    return again
  }

  reconnect (allowed) {
    if (this._live()) this._queue._native.reconnect(this._id, !!allowed)
    else this._last = { ...this._last, status: allowed ? this._last.status | RECONNECT : this._last.status & ~RECONNECT }
  }

  connected (stream, isTCP) {
    this.stream = stream
    if (this._live()) this._queue._native.connected(this._id, !!isTCP)
    else this._last = { ...this._last, status: (this._last.status | PROVEN) & ~(isTCP ? FIREWALLED : 0), retries: 0 }
    if (this.banned) this.ban()
  }

  disconnected () {
    this.stream = null
    this.topics = []
    this.removeAllListeners('topic')
    if (this._live()) this._queue._native.disconnected(this._id)
    if (this._queue) this._queue._disconnected(this)
  }

  /** Stops reconnects; soft: end the stream politely, else destroy it. */
  ban (soft) {
    if (!soft) return this.destroy(new Error('Peer was banned'))
    this._setBanned()
    if (this.stream && !this.stream.destroyed) this.stream.end()
    this.disconnected()
  }

  destroy (err) {
    this._setBanned()
    if (this.stream && !this.stream.destroyed) this.stream.destroy(err)
    this.disconnected()
  }

  _setBanned () {
    if (this._live()) {
      this._queue._native.ban(this._queue._now(), this._id)
      this._queue._schedule() // a banned peer's forget delay, if one is set
    } else this._last = { ...this._last, status: this._last.status | BANNED }
  }

  // The peer was also found under `topic` ('topic' event).
  _addTopic (topic) {
    this.topics.push(topic)
    this.emit('topic', topic)
  }

  // The queue forgot this entry (given up, or removed): banned from now on.
  _forgotten () {
    this._view()
    this._id = null
    this._last = { ...this._last, status: this._last.status | BANNED }
    if (this.stream && !this.stream.destroyed) this.stream.destroy()
    this.stream = null
  }

  _live () { return this._id != null && !!this._queue && !this._queue.destroyed }
}

module.exports = { PeerInfo, status: { PROVEN, RECONNECT, BANNED, ACTIVE: 8, TRIED: 16, FIREWALLED } }
