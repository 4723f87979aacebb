'use strict'
// Reference DHT nodes for bench/connect-time.js: __test__/helpers/js-dht.js
// (same arguments) behind the benchmarks' child guard, so it only runs
// inside the lab and exits with the orchestrator.
//   node dht-nodes.js bootstrap <port> | nodes <count> <bootstrap>
const guard = require('./guard')
guard.child({ deadlineMs: Number(process.env.BENCH_DEADLINE_MS) || 30 * 60 * 1000 })
require('../../__test__/helpers/js-dht.js')
