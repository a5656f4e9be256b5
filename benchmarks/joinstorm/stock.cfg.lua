-- The "stock" setup of the join-storm benchmark (benchmarks/joinstorm): Debian's prosody.cfg.lua stays as
-- the package ships it; this file, in /etc/prosody/conf.d, adds the hosts the role configures and nothing
-- else. The run script replaces meet.example.test when another domain is asked for.

VirtualHost "meet.example.test"
	authentication = "anonymous"
	-- Tsung speaks plain XMPP on 5222. The role's main VirtualHost gets the same line, through
	-- prosody_custom_main_host_config: encryption is not required on either side.
	c2s_require_encryption = false

Component "conference.meet.example.test" "muc"
