-- wrk script: OpenAI-style chat completions from 1000 accounts in turn.
-- Used by tests/benchmarks/load_envoy.py; by hand:
--   wrk -t2 -c32 -d10s --latency -s tests/benchmarks/load_envoy.lua http://127.0.0.1:8080
local counter = 0
local body = '{"model":"test-model","max_tokens":16,' ..
  '"messages":[{"role":"user","content":"What is the capital of France? Answer in one word."}]}'

request = function()
  counter = counter + 1
  local headers = {
    ["content-type"] = "application/json",
    ["x-account-id"] = "acct-" .. (counter % 1000),
    ["x-account-tier"] = "pro",
  }
  return wrk.format("POST", "/v1/chat/completions", headers, body)
end
