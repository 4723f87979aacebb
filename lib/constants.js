'use strict'
// The engine's constants that JS needs too, read from the addon so that
// each is written once (src/swarm/config.rs, src/swarm/peer_queue.rs).
const { engineConstants } = require('../binding')

const c = engineConstants()

module.exports = {
  /** How long a dial may take before it fails (ms): the reference's 10 s. */
  CONNECT_TIMEOUT: c.connectTimeoutMs,
  /** The reference's public bootstrap nodes, used when none are given. */
  DEFAULT_BOOTSTRAP: Object.freeze(c.defaultBootstrap.slice()),
  /** The ./hyperswarm dial queue's bounds: peers remembered, unproven peers per IP, /24 and referrer, retries. */
  MAX_INFOS: c.maxInfos,
  MAX_PER_IP: c.maxPerIp,
  MAX_PER_SUBNET: c.maxPerSubnet,
  MAX_PER_REFERRER: c.maxPerReferrer,
  MAX_RETRIES: c.maxRetries
}
