-- Argo CD health check for pluginrelease.io/PluginActivation (one node's activation, shown under its
-- release in the Argo CD tree), read from the phase its node agent reports.
--   Active, Probed (dry run)        -> Healthy
--   RolledBack (candidate rejected) -> Degraded: the previous version still serves on that node
--   Failed (even the rollback failed) -> Degraded: the node needs an operator
--   Pending, Staged, Probing, none  -> Progressing
local hs = {}

if obj.status == nil or obj.status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the node agent to pick up the activation."
  return hs
end

if obj.metadata ~= nil and obj.metadata.generation ~= nil and obj.status.observedGeneration ~= nil and obj.status.observedGeneration ~= obj.metadata.generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the node agent to observe generation " .. obj.metadata.generation .. "."
  return hs
end

local phase = obj.status.phase
local message = obj.status.message or ""
if obj.status.reason ~= nil then
  message = obj.status.reason .. ": " .. message
end

if phase == "Active" or phase == "Probed" then
  hs.status = "Healthy"
elseif phase == "RolledBack" or phase == "Failed" then
  hs.status = "Degraded"
else
  hs.status = "Progressing"
end
hs.message = message
return hs
