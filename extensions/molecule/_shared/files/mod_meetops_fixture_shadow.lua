-- meetops.jitsi test fixture, not one of Jitsi's modules: put into a plugin directory under the name of one of
-- Prosody's own modules, to show that the role never lets a plugin directory shadow Prosody's modules. If it
-- were ever loaded it would leave a mark the tests look for.
local mark = io.open("/tmp/meetops-fixture-shadow-loaded", "a");
if mark then mark:write(module.name, " ", module.host, "\n"); mark:close(); end
module:log("error", "meetops fixture shadow loaded as mod_%s on %s", module.name, module.host);
