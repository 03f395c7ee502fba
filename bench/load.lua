-- wrk script for bench/load.py: a mix of feed URLs, with and without conditional headers.
--
--   wrk -t2 -c256 -d60s --latency -s bench/load.lua http://127.0.0.1:PORT/ -- PATHS_FILE
--
-- PATHS_FILE has one line per URL: path, ETag, Last-Modified, separated by tabs (the validators
-- as they were before the run; as clippings arrive some go stale, which must give 200, and the
-- rest 304). Every path is requested in five variants: plain, If-None-Match, If-Modified-Since,
-- gzip, gzip with If-None-Match. Each thread walks the (path, variant) list from its own offset.
-- Responses are counted by status; done() prints one line, "LOADJSON " and a JSON object.

local threads = {}
local counter = 1

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

local function read_lines(name)
  local lines = {}
  local fh = assert(io.open(name, "r"))
  for line in fh:lines() do
    if line ~= "" then
      table.insert(lines, line)
    end
  end
  fh:close()
  return lines
end

function init(args)
  local paths_file = args[1]
  if paths_file == nil then
    error("pass the paths file after --")
  end
  reqs = {}
  for _, line in ipairs(read_lines(paths_file)) do
    local path, etag, lastmod = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)$")
    table.insert(reqs, wrk.format("GET", path, {}))
    if etag ~= "" then
      table.insert(reqs, wrk.format("GET", path, { ["If-None-Match"] = etag }))
      table.insert(reqs, wrk.format("GET", path, { ["Accept-Encoding"] = "gzip", ["If-None-Match"] = etag }))
    end
    if lastmod ~= "" then
      table.insert(reqs, wrk.format("GET", path, { ["If-Modified-Since"] = lastmod }))
    end
    table.insert(reqs, wrk.format("GET", path, { ["Accept-Encoding"] = "gzip" }))
  end
  -- Spread the threads over the list.
  n = #reqs
  i = ((id - 1) * 7919) % n
  statuses = {}
end

function request()
  i = i % n + 1
  return reqs[i]
end

function response(status, headers, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
end

function done(summary, latency, requests)
  local all = {}
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    for k, v in pairs(s) do
      all[k] = (all[k] or 0) + v
    end
  end
  local parts = {}
  for k, v in pairs(all) do
    table.insert(parts, string.format('"%s": %d', k, v))
  end
  local e = summary.errors
  local out = string.format(
    '{"requests": %d, "duration_us": %d, "bytes": %d, "errors": {"connect": %d, "read": %d, "write": %d, '
      .. '"status": %d, "timeout": %d}, "latency_us": {"p50": %d, "p90": %d, "p99": %d, "max": %d, "mean": %.1f}, '
      .. '"statuses": {%s}, "distinct_requests": %d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    table.concat(parts, ", "), threads[1]:get("n"))
  io.write("LOADJSON " .. out)
end
