-- One wrk script for every scenario, steered by environment variables that
-- bench/run.py sets:
--
--   BENCH_MODE     static | ids | paths | post
--   BENCH_PATH     static, post: the path requested; ids: the prefix before the id
--   BENCH_ID_MIN   ids: smallest id to ask for
--   BENCH_ID_MAX   ids: largest id to ask for
--   BENCH_PATHS    paths: a file of request paths, one a line, asked for at random
--   BENCH_TOKEN    when set, sent as "Authorization: Bearer <token>"
--
-- Errors are socket errors, timeouts and every response outside 2xx (wrk's
-- own count of "status errors" skips 3xx: a redirect must not pass as a page).
-- `done` prints one line, "BENCH_RESULT {json}", which run.py reads.

local mode = os.getenv("BENCH_MODE") or "static"
local path = os.getenv("BENCH_PATH") or "/"
local token = os.getenv("BENCH_TOKEN")

wrk.method = mode == "post" and "POST" or "GET"
wrk.path = path
wrk.headers["Accept"] = "application/json"
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end
if mode == "post" then
  wrk.headers["Content-Type"] = "application/json"
end

local threads = {}
local counter = 0

function setup(thread)
  thread:set("thread_number", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

local id_min, id_max, paths

function init(args)
  -- Each thread has its own Lua state; seed each differently.
  math.randomseed(os.time() * 1000 + (thread_number or 0))
  if mode == "ids" then
    id_min = tonumber(os.getenv("BENCH_ID_MIN"))
    id_max = tonumber(os.getenv("BENCH_ID_MAX"))
    assert(id_min and id_max and id_min <= id_max, "BENCH_ID_MIN/BENCH_ID_MAX unset")
  elseif mode == "paths" then
    paths = {}
    local file = assert(io.open(os.getenv("BENCH_PATHS") or "", "r"), "BENCH_PATHS unreadable")
    for line in file:lines() do
      if line ~= "" then
        table.insert(paths, line)
      end
    end
    file:close()
    assert(#paths > 0, "BENCH_PATHS is empty")
  end
end

-- Only the dynamic modes define `request`: without it wrk sends one request
-- built up front, which costs the load generator nothing per request.
if mode == "ids" then
  function request()
    return wrk.format(nil, path .. math.random(id_min, id_max))
  end
elseif mode == "paths" then
  function request()
    return wrk.format(nil, paths[math.random(#paths)])
  end
elseif mode == "post" then
  local sent = 0
  function request()
    sent = sent + 1
    local body = string.format(
      '{"name":"bench item %d-%d","price":%.2f}', thread_number or 0, sent, math.random() * 500
    )
    return wrk.format(nil, nil, nil, body)
  end
end

-- Per thread: how many responses came back with each status outside 2xx.
unexpected = {}

function response(status, headers, body)
  if status < 200 or status > 299 then
    unexpected[status] = (unexpected[status] or 0) + 1
  end
end

function done(summary, latency, requests)
  local counts = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("unexpected")) do
      counts[status] = (counts[status] or 0) + n
    end
  end
  local non_2xx, statuses = 0, {}
  for status, n in pairs(counts) do
    non_2xx = non_2xx + n
    table.insert(statuses, string.format('"%d":%d', status, n))
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,'
      .. '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,'
      .. '"non_2xx":%d,"statuses":{%s},'
      .. '"p50_us":%d,"p90_us":%d,"p99_us":%d,"mean_us":%.1f,"max_us":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.timeout, non_2xx, table.concat(statuses, ","),
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max
  ))
end
