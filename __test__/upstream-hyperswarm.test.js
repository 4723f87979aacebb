'use strict'
// hyperswarm 2.15.3's own tests (its npm package's swarm, connectivity and
// destroy files, on its own runner, tap 14), against the reference and against
// ours. Only the require of the package under test is changed, at run time
// (see upstream/run.js).
require('./upstream/define').defineUpstreamTests('hyperswarm')
