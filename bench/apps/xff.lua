-- wrk script for bench/compare.ts: every request carries an X-Forwarded-For
-- picked at random from a fixed pool of 1000 addresses (198.18.0.0/15, the
-- range RFC 2544 reserves for benchmarks). `-- close` adds Connection: close,
-- so each request is on its own connection (wrk reconnects after each close).
-- `-- client` gives each wrk thread one fixed address from the pool on all its
-- connections (compare.ts runs -t10 -c50: 10 clients of 5 connections, as
-- browsers or a TCP-mode balancer present them); the same addresses in the
-- same order for every contender.
-- done() prints one JSON line compare.ts parses.

local POOL = 1000
local requests = {}
local counter = 0
local threads = {}

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

function init(args)
  local close = args[1] == "close"
  for i = 0, POOL - 1 do
    local headers = { ["X-Forwarded-For"] = string.format("198.18.%d.%d", math.floor(i / 256), i % 256) }
    if close then headers["Connection"] = "close" end
    requests[i + 1] = wrk.format("GET", "/", headers)
  end
  math.randomseed(os.time() * 1000 + (id or 0))
  if args[1] == "client" then
    -- A static request (no request() call per request, as wrk without a
    -- script): this thread's client, written again on every request.
    local i = ((id - 1) * 37 + 11) % POOL
    wrk.headers["X-Forwarded-For"] = string.format("198.18.%d.%d", math.floor(i / 256), i % 256)
    request = nil
  end
end

function request()
  return requests[math.random(POOL)]
end

function done(summary, latency, _)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"durationUs":%d,"bytes":%d,"connectErrors":%d,"readErrors":%d,"writeErrors":%d,"statusErrors":%d,"timeouts":%d,"p50Us":%d,"p99Us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
