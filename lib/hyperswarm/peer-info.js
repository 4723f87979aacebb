'use strict'
// What the swarm knows about one peer (or one incoming connection): its
// state bits, dial priority and retry count (spec/api-network.md §4.3).
const { EventEmitter } = require('events')

/** Status bits, as hyperswarm 2.x numbers them (users read `info.status`). */
const PROVEN = 1 // connected at least once
const RECONNECT = 2 // may be dialled again after a drop
const BANNED = 4
const ACTIVE = 8 // being dialled or connected now
const TRIED = 16 // dialled at least once
const FIREWALLED = 32 // not yet reached over TCP

/** Most retries before a peer is given up. */
const MAX_RETRIES = 3
/** The id used when deduplicate() is given no local id. */
const NO_ID = Buffer.alloc(32)

class PeerInfo extends EventEmitter {
  /** `peer`: the discovery peer we may dial, or null for an incoming connection. */
  constructor (peer, queue) {
    super()
    this.peer = peer
    this.client = peer !== null
    this.stream = null
    this.status = RECONNECT | FIREWALLED
    this.duplicate = false
    this.topics = []
    this.priority = initialPriority(peer)
    // A peer behind our own public address is most likely us, or behind
    // the same NAT as us: one attempt only.
    this.retries = this.priority === 1 ? MAX_RETRIES : 0
    this._seen = new Set()
    this._queue = queue
    this._dedupKey = null
    this._parties = null // what the queue counts this peer against until it connects
  }

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
    this.requeue()
    if (this.banned || this.retries > MAX_RETRIES) return false
    this.priority = retryPriority(this)
    return true
  }

  reconnect (allowed) {
    if (allowed) this.status |= RECONNECT
    else this.status &= ~RECONNECT
  }

  active (on) {
    if (on) this.status |= ACTIVE | TRIED
    else this.status &= ~ACTIVE
  }

  connected (stream, isTCP) {
    if (isTCP) this.status &= ~FIREWALLED
    this.status |= PROVEN
    this.stream = stream
    this.retries = 0
    if (this._queue) this._queue._proven(this)
    if (this.banned) this.ban()
  }

  disconnected () {
    this.stream = null
    this.topics = []
    this._seen.clear()
    this.removeAllListeners('topic')
    if (this._queue) this._queue._disconnected(this)
  }

  /** Records that the peer was also found under `topic` ('topic' event when new). */
  topic (topic) {
    const hex = topic.toString('hex')
    if (this._seen.has(hex)) return
    this._seen.add(hex)
    this.topics.push(topic)
    this.emit('topic', topic)
  }

  /** Recomputes the priority; false if the peer must not be dialled now. */
  update () {
    if (this.status & (BANNED | ACTIVE)) return false
    if (this.retries > MAX_RETRIES) return false
    this.priority = retryPriority(this)
    return true
  }

  /** Stops reconnects; soft: end the stream politely, else destroy it. */
  ban (soft) {
    if (!soft) return this.destroy(new Error('Peer was banned'))
    this.status |= BANNED
    if (this.stream && !this.stream.destroyed) this.stream.end()
    this.disconnected()
  }

  destroy (err) {
    this.status |= BANNED
    if (this.stream && !this.stream.destroyed) this.stream.destroy(err)
    this.disconnected()
  }

  /** Counts a retry; returns which backoff step to wait, or -1 to give up. */
  requeue () {
    if (this.banned || !(this.status & RECONNECT)) return -1
    const step = this.retries++
    return step >= MAX_RETRIES ? -1 : step
  }
}

function initialPriority (peer) {
  if (!peer) return 2
  if (peer.local) return 3
  if (peer.to && peer.to.host === peer.host) return 1
  return 2
}

// Recent failures are retried first, a peer that never answered last.
function retryPriority (info) {
  if ((info.status & TRIED) && !(info.status & PROVEN)) return 0
  switch (info.retries) {
    case 3: return 1
    case 2: return 4
    case 1: return 5
    default: return info.peer && info.peer.local ? 3 : 2
  }
}

module.exports = { PeerInfo, MAX_RETRIES, status: { PROVEN, RECONNECT, BANNED, ACTIVE, TRIED, FIREWALLED } }
