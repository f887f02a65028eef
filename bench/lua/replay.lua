-- Cycle through pre-built requests: wrk -s replay.lua URL -- DATAFILE NTHREADS METHOD PATH
-- DATAFILE returns a Lua list of {headers = {...}, body = "..."}; thread k uses items k, k+T, k+2T, ...
-- Prints BENCH_USED <n> (distinct items sent) and BENCH_WRAPPED <n> (threads that ran out and started over).
local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  items = dofile(args[1])
  step = tonumber(args[2])
  method = args[3]
  path = args[4]
  pos = id
  used = 0
  wrapped = 0
end

function request()
  if pos >= #items then
    pos = id % #items
    wrapped = 1
  end
  local item = items[pos + 1]
  pos = pos + step
  used = used + 1
  return wrk.format(method, path, item.headers, item.body)
end

function done(summary, latency, requests)
  local used_total, wrapped_total = 0, 0
  for _, t in ipairs(threads) do
    used_total = used_total + t:get("used")
    wrapped_total = wrapped_total + t:get("wrapped")
  end
  io.write("BENCH_USED " .. used_total .. "\n")
  io.write("BENCH_WRAPPED " .. wrapped_total .. "\n")
end
