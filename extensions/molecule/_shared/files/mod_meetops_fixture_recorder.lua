-- meetops.jitsi test fixture, not one of Jitsi's modules: it does nothing but say where it was loaded. The
-- tests link it under each module name the role's configuration loads, to see the real Prosody find and load
-- every one of them from the plugin directory (plugin_paths) on the right host.
module:log("info", "meetops fixture recorder loaded as mod_%s on %s", module.name, module.host);
