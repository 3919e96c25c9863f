-- wrk script: each thread runs whole work-order lifecycles, one command at a
-- time on its one connection (run with -t N -c N), book → ... → feedback.
-- args: dispatcher token, technician token (actor tech-bench), client_app token.

local tokens = {}
local step = 1
local order = nil
local book = '{"customer":{"name":"王先生","phone":"13800000000","address":"上海"},'
  .. '"service_type":"空调维修","priority":"routine","zone":"urban",'
  .. '"channel":"phone","billing":"paid","description":"不制冷"}'

local steps = {
  { path = "", who = "disp", body = book },
  { path = "/assign", who = "disp", body = '{"technician_id":"tech-bench"}' },
  { path = "/confirm", who = "tech", body = "{}" },
  { path = "/depart", who = "tech", body = "{}" },
  { path = "/arrive", who = "tech", body = "{}" },
  { path = "/start", who = "tech", body = '{"identity_shown":true,"customer_identity_verified":true,"site_safe":true,"tools_complete":true,"risk_assessment":"ok"}' },
  { path = "/complete", who = "tech", body = '{"summary":"done","parts_used":[],"checklist":[{"item":"tested","done":true}]}' },
  { path = "/accept", who = "tech", body = '{"signed_by":"王先生"}' },
  { path = "/feedback", who = "app",
    body = '{"csat":5,"attitude":4,"skill":4,"punctuality":4,"promise":4,"praise":false}' },
}

function init(args)
  tokens.disp = args[1]
  tokens.tech = args[2]
  tokens.app = args[3]
end

function request()
  local s = steps[step]
  local path = "/work-orders"
  if step > 1 then
    path = "/work-orders/" .. order .. s.path
  end
  return wrk.format("POST", path, {
    ["Authorization"] = "Bearer " .. tokens[s.who],
    ["Content-Type"] = "application/json",
  }, s.body)
end

function response(status, headers, body)
  if status >= 300 then
    step = 1 -- start a new lifecycle; wrk counts the non-2xx answer
    return
  end
  if step == 1 then
    order = string.match(body, '"id":"([^"]+)"')
  end
  step = step % #steps + 1
end
