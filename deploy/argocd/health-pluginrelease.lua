-- Argo CD health check for pluginrelease.io/PluginRelease, read from its kstatus conditions.
-- Installed as resource.customizations.health.pluginrelease.io_PluginRelease in argocd-cm
-- (argocd-cm-patch.yaml beside this file; docs/operations.md, "Argo CD").
--   status not yet written for this generation          -> Progressing
--   Stalled=True (halted, rolled back, invalid spec...)  -> Degraded
--   dry run: Probed=True -> Healthy, Probed=False (failed) -> Degraded
--   Ready=True                                           -> Healthy
--   spec.rollout.paused, or paused after the canaries   -> Suspended
--   anything else                                        -> Progressing
local hs = {}

local function condition(conditionType)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == conditionType then
      return c
    end
  end
  return nil
end

local function describe(c, fallback)
  if c == nil then
    return fallback
  end
  local reason = c.reason or ""
  local message = c.message or ""
  if message == "" then
    return reason
  end
  return reason .. ": " .. message
end

if obj.status == nil or obj.status.observedGeneration == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the controller to observe the release."
  return hs
end

-- kstatus: a status written for an older spec says nothing about the current one.
if obj.metadata ~= nil and obj.metadata.generation ~= nil and obj.status.observedGeneration ~= obj.metadata.generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the controller to observe generation " .. obj.metadata.generation .. "."
  return hs
end

local stalled = condition("Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(stalled, "The rollout is stalled.")
  return hs
end

if obj.spec ~= nil and obj.spec.dryRun == true then
  local probed = condition("Probed")
  if probed ~= nil and probed.status == "True" then
    hs.status = "Healthy"
    hs.message = describe(probed, "Every node probed the candidate successfully.")
    return hs
  end
  if probed ~= nil and probed.status == "False" and probed.reason ~= "DryRunProgressing" then
    hs.status = "Degraded"
    hs.message = describe(probed, "The dry run failed on at least one node.")
    return hs
  end
end

local ready = condition("Ready")
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready, "Every targeted node is active on the current revision.")
  return hs
end

local paused = obj.spec ~= nil and obj.spec.rollout ~= nil and obj.spec.rollout.paused == true
if paused or obj.status.phase == "Paused" then
  hs.status = "Suspended"
  hs.message = describe(condition("Reconciling") or ready, "The rollout is paused.")
  return hs
end

hs.status = "Progressing"
hs.message = describe(condition("Reconciling") or ready, "The rollout is in progress.")
return hs
