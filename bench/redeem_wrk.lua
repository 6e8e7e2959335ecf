-- wrk script for bench/redeem.py: distinct cheque codes per request, a token per provider.
--
--   wrk -t2 -c32 -d30s --latency -s bench/redeem_wrk.lua http://127.0.0.1:PORT \
--       -- mode=redeem codes=FILE tokens=FILE service=SLUG threads=2
--
-- mode=redeem  POST /api/v1/redemptions/ {"codes": [code], "service": slug}; every request takes
--              the next code of its thread's own slice (codes i with i % threads == thread id),
--              so no code is sent twice; Authorization rotates over the thread's own tokens.
-- mode=check   GET /api/v1/cheques/<code>/ with a token, codes drawn at random from the file.
-- mode=bare    GET /api/v1/bench/bare/<code>/ (bench_urls.py), codes drawn at random.
-- mode=floor   POST /api/v1/bench/floor/ (bench_urls.py), the same body and codes as redeem.
--
-- Every request carries a token (the bare views ignore it): all go through the same handler.
--
-- done() prints one "RESULT key=value ..." line and one "STATUS <code> <count>" line per HTTP
-- status (wrk's threads count responses in response(); main sums them with thread:get).

local threads = {}
local next_id = 0

function setup(thread)
   thread:set("tid", next_id)
   next_id = next_id + 1
   table.insert(threads, thread)
end

local function read_lines(path)
   local lines = {}
   for line in io.lines(path) do
      if line ~= "" then
         lines[#lines + 1] = line
      end
   end
   return lines
end

local options = {}
local codes = {}
local tokens = {}
local sent = 0
wrapped = 0 -- globals: read from the main state with thread:get
counts = {}

function init(args)
   for _, arg in pairs(args) do
      local key, value = string.match(arg, "^(%w+)=(.*)$")
      if key then
         options[key] = value
      end
   end
   local nthreads = tonumber(options.threads or "1")
   local all_codes = read_lines(options.codes)
   for index, code in ipairs(all_codes) do
      if (index - 1) % nthreads == tid then
         codes[#codes + 1] = code
      end
   end
   if options.tokens then
      local all_tokens = read_lines(options.tokens)
      for index, token in ipairs(all_tokens) do
         if (index - 1) % nthreads == tid then
            tokens[#tokens + 1] = token
         end
      end
   end
   math.randomseed(os.time() + tid * 7919)
   counts = {}
end

function request()
   sent = sent + 1
   local code
   if options.mode == "redeem" or options.mode == "floor" then
      local index = sent
      if index > #codes then -- out of distinct codes: reuse (answers 409, counted)
         index = (index - 1) % #codes + 1
         wrapped = wrapped + 1
      end
      code = codes[index]
   else
      code = codes[math.random(#codes)]
   end
   local headers = { ["Authorization"] = "Token " .. tokens[(sent - 1) % #tokens + 1] }
   if options.mode == "bare" then
      return wrk.format("GET", "/api/v1/bench/bare/" .. code .. "/", headers, nil)
   end
   if options.mode == "check" then
      return wrk.format("GET", "/api/v1/cheques/" .. code .. "/", headers, nil)
   end
   headers["Content-Type"] = "application/json"
   local body = '{"codes": ["' .. code .. '"], "service": "' .. options.service .. '"}'
   if options.mode == "floor" then
      return wrk.format("POST", "/api/v1/bench/floor/", headers, body)
   end
   return wrk.format("POST", "/api/v1/redemptions/", headers, body)
end

function response(status, headers, body)
   counts[status] = (counts[status] or 0) + 1
end

function done(summary, latency, requests)
   local totals = {}
   local reused = 0
   for _, thread in ipairs(threads) do
      for status, count in pairs(thread:get("counts")) do
         totals[status] = (totals[status] or 0) + count
      end
      reused = reused + (thread:get("wrapped") or 0)
   end
   local errors = summary.errors
   io.write(string.format(
      "RESULT requests=%d duration_us=%d p50_us=%d p90_us=%d p95_us=%d p99_us=%d max_us=%d "
         .. "mean_us=%d connect_errors=%d read_errors=%d write_errors=%d timeouts=%d "
         .. "reused_codes=%d\n",
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
      latency:percentile(95), latency:percentile(99), latency.max, latency.mean,
      errors.connect, errors.read, errors.write, errors.timeout, reused))
   for status, count in pairs(totals) do
      io.write(string.format("STATUS %d %d\n", status, count))
   end
end
