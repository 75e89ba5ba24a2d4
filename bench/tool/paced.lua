-- Pace wrk to a fixed offered rate, for the benchmark's latency scenario.
--
-- wrk has no rate option.  Its delay() hook, called before each request a
-- connection sends, returns how many milliseconds to wait first.  This script
-- keeps ONE schedule for all connections of wrk's (single) thread: each call
-- takes the next slot, 1/rate s after the previous one, and waits until it.
-- A request whose slot has passed goes at once (so the offered rate holds)
-- and counts as late when more than BENCH_LATE_MS behind: its wait before
-- sending is not in its latency (coordinated omission), so many late sends
-- make the percentiles optimistic.  wrk's timers have 1 ms resolution, so
-- requests leave in per-millisecond groups of about rate/1000.
--
-- Environment: BENCH_RATE (requests/s, required), BENCH_LATE_MS (default 1).
-- Needs wrk built with LuaJIT (Debian's is): the clock is read through ffi.
-- done() prints "PACED ..." lines that bench/tool/wrk.py parses: the exact
-- percentiles of wrk's per-request latency record, in microseconds.

local rate = tonumber(os.getenv("BENCH_RATE") or "")
if rate == nil or rate <= 0 then
  error("paced.lua: set BENCH_RATE to the offered requests/s")
end
local late_ms = tonumber(os.getenv("BENCH_LATE_MS") or "1")

local ok, ffi = pcall(require, "ffi")
if not ok then
  error("paced.lua: this wrk's Lua has no ffi (LuaJIT), cannot pace requests")
end
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } paced_timespec;
int clock_gettime(int clk_id, paced_timespec *tp);
]]
local ts = ffi.new("paced_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts)  -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local interval = 1000 / rate
local next_at = nil
late = 0
sent = 0

function delay()
  local now = now_ms()
  if next_at == nil then next_at = now end
  next_at = next_at + interval
  sent = sent + 1
  local wait = next_at - now
  if wait < -late_ms then late = late + 1 end
  if wait <= 0 then return 0 end
  return math.floor(wait + 0.5)
end

local threads = {}
function setup(thread) table.insert(threads, thread) end

function done(summary, latency, requests)
  local late_all, sent_all = 0, 0
  for _, t in ipairs(threads) do
    late_all = late_all + t:get("late")
    sent_all = sent_all + t:get("sent")
  end
  io.write(string.format("PACED requests=%d duration_us=%d late=%d sent=%d max_us=%d\n",
    summary.requests, summary.duration, late_all, sent_all, latency.max))
  for _, p in ipairs({50, 90, 99, 99.9}) do
    io.write(string.format("PACED p%s=%d\n", p, latency:percentile(p)))
  end
end
