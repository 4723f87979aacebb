'use strict'
// Releases what was pushed in batches: a timer ticks every 66 % of `period`
// and a batch goes out on the second tick after its first push, so an entry
// waits between 0.66 and 1.32 × `period` (hyperswarm 2.x's retry timing,
// spec/api-network.md §4.5). One timer serves every entry of one delay.

/** Tick interval as a share of the period (hyperswarm 2.15.3's bulk timer). */
const TICK_SHARE = 0.66

class BatchTimer {
  constructor (period, release) {
    this._period = period
    this._release = release
    this._interval = null
    this._due = [] // goes out on the next tick
    this._waiting = [] // goes out on the tick after
  }

  push (entry) {
    if (!this._interval) {
      this._interval = setInterval(() => this._tick(), Math.floor(this._period * TICK_SHARE))
      // Only the engine keeps the process alive, never a retry timer.
      this._interval.unref()
    }
    this._waiting.push(entry)
  }

  _tick () {
    const due = this._due
    this._due = this._waiting
    this._waiting = []
    if (due.length) this._release(due)
    if (!this._due.length && this._interval) {
      clearInterval(this._interval)
      this._interval = null
    }
  }

  destroy () {
    clearInterval(this._interval)
    this._interval = null
    this._due = []
    this._waiting = []
  }
}

/** Stands in for a timer whose period is Infinity: nothing is ever released. */
const NEVER = { push () {}, destroy () {} }

module.exports = { BatchTimer, NEVER }
