-- wrk script for gknet serve: POSTs multipart bodies read from files (BODIES = space-separated
-- paths, each file holding one complete multipart body with the boundary BOUNDARY), round-robin,
-- and counts the response statuses; `done` prints them as "status <code> <count>" lines.
local bodies = {}
local boundary = os.getenv("BOUNDARY")
for path in string.gmatch(os.getenv("BODIES") or "", "%S+") do
  local file = assert(io.open(path, "rb"))
  bodies[#bodies + 1] = file:read("*a")
  file:close()
end

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

local counter = 0
statuses = {}  -- global: done() reads it from each thread with thread:get
function init(args)
  counter = math.random(0, #bodies - 1)
end

function request()
  counter = counter + 1
  local body = bodies[(counter % #bodies) + 1]
  return wrk.format("POST", "/v1/harmonize", {
    ["Content-Type"] = "multipart/form-data; boundary=" .. boundary,
  }, body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    local counts = thread:get("statuses")
    for code, count in pairs(counts) do
      total[code] = (total[code] or 0) + count
    end
  end
  for code, count in pairs(total) do
    io.write(string.format("status %d %d\n", code, count))
  end
  io.write(string.format("latency_p50_ms %.1f\n", latency:percentile(50) / 1000))
  io.write(string.format("latency_p99_ms %.1f\n", latency:percentile(99) / 1000))
  io.write(string.format("requests %d\n", summary.requests))
  io.write(string.format("duration_s %.1f\n", summary.duration / 1e6))
end
