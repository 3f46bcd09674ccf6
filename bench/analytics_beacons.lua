-- The beacon load of bench/analytics.py, for wrk (C and LuaJIT: a fraction of the CPU of Python
-- senders, which matters on 2 cores shared with the server). The bench sets, in the environment:
--   BEACON_VIEWERS  a file, one viewer a line: "<access token> <video id> <session uuid>"
--   BEACON_RATE     beacons per second, all viewers together (viewers / 10 s)
--   BEACON_START    when beacon 0 is due, in CLOCK_MONOTONIC seconds (Python's time.monotonic())
--   BEACON_TOTAL    how many beacons to send
--   BEACON_THREADS  wrk's -t
-- Beacon n (0, 1, ...) is viewer n % viewers's beacon number n // viewers, due at
-- BEACON_START + n / BEACON_RATE: the same schedule as the bench's Python senders. Thread t sends
-- the n with n % threads == t; a connection waits (delay()) until its next beacon is due, so the
-- rate is the schedule's as long as the server keeps up (lateness is reported: late_p95_ms).
-- wrk's -d ends the run (the bench gives it the schedule's length and a margin); done() prints one line, "BEACONS {json}", which the bench reads.
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } beacon_timespec;
int clock_gettime(int clk_id, beacon_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local clock = ffi.new("beacon_timespec")

local function now()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, clock)
  return tonumber(clock.tv_sec) + tonumber(clock.tv_nsec) / 1e9
end

local threads = {}
local thread_count = 0

function setup(thread)
  thread:set("id", thread_count)
  thread_count = thread_count + 1
  table.insert(threads, thread)
end

function init(args)
  rate = tonumber(os.getenv("BEACON_RATE"))
  start = tonumber(os.getenv("BEACON_START"))
  total = tonumber(os.getenv("BEACON_TOTAL"))
  step = tonumber(os.getenv("BEACON_THREADS"))
  viewers = {}
  for line in io.lines(os.getenv("BEACON_VIEWERS")) do
    local token, video, session = line:match("^(%S+) (%S+) (%S+)$")
    viewers[#viewers + 1] = { token = token, video = video, session = session }
  end
  next_n = id
  queue, head, tail = {}, 1, 0
  answered, non200, statuses = 0, 0, ""
  late = {} -- lateness histogram, 1 ms bins (the last one: 1 s and more)
  for ms = 0, 1000 do late[ms] = 0 end
end

function delay()
  if next_n >= total then
    return 3600 * 1000 -- nothing left for this connection: it idles until the thread stops
  end
  local n = next_n
  next_n = next_n + step
  tail = tail + 1
  queue[tail] = n
  local wait = start + n / rate - now()
  return wait > 0 and math.floor(wait * 1000) or 0
end

function request()
  local n = queue[head]
  if n == nil then
    -- wrk asks for one request before the run to check the script (never sent); a request
    -- without a delay() before it would be a bug of this script, and a non-200 answer shows it.
    return wrk.format("POST", "/no-beacon-scheduled/")
  end
  queue[head] = nil
  head = head + 1
  local count = #viewers
  local viewer = viewers[(n % count) + 1]
  local seq = math.floor(n / count)
  local ms = math.floor((now() - (start + n / rate)) * 1000)
  ms = ms < 0 and 0 or (ms > 1000 and 1000 or ms)
  late[ms] = late[ms] + 1
  local body = string.format(
    '{"session":"%s","seq":%d,"event":"%s","position":%.1f,"watched":10.0,"stalls":0,"stalled":0,' ..
    '"switches":0,"rendition":"480p"%s}',
    viewer.session, seq, seq == 0 and "start" or "progress", 10.0 * (seq + 1), seq == 0 and ',"ttff_ms":400' or "")
  return wrk.format("POST", "/api/video/" .. viewer.video .. "/playback/",
    { ["Authorization"] = "Bearer " .. viewer.token, ["Content-Type"] = "application/json" }, body)
end

function response(status, headers, body)
  answered = answered + 1
  if status ~= 200 then
    non200 = non200 + 1
    if not statuses:find(" " .. status .. " ", 1, true) then statuses = statuses .. " " .. status .. " " end
  end
end

function done(summary, latency, requests)
  local non200_all, statuses_all, late_all = 0, "", {}
  for ms = 0, 1000 do late_all[ms] = 0 end
  for _, thread in ipairs(threads) do
    non200_all = non200_all + thread:get("non200")
    statuses_all = statuses_all .. thread:get("statuses")
    local histogram = thread:get("late")
    for ms = 0, 1000 do late_all[ms] = late_all[ms] + (histogram[ms] or 0) end
  end
  local sent, seen, late_p95 = 0, 0, 0
  for ms = 0, 1000 do sent = sent + late_all[ms] end
  for ms = 0, 1000 do
    seen = seen + late_all[ms]
    if seen >= 0.95 * sent then late_p95 = ms break end
  end
  local errors = summary.errors
  io.write(string.format(
    'BEACONS {"requests":%d,"sent":%d,"non200":%d,"statuses":"%s","socket_errors":%d,"timeouts":%d,' ..
    '"median_ms":%.2f,"p95_ms":%.2f,"p99_ms":%.2f,"max_ms":%.2f,"late_p95_ms":%d}\n',
    summary.requests, sent, non200_all, statuses_all, errors.connect + errors.read + errors.write, errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, late_p95))
end
