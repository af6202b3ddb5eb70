// Package all links every DNS plugin into a binary: import it for its
// side effects (each plugin registers its directive with dnsserver in its
// init). `switchboard dns` and `switchboard up` share this one list. It
// owns nothing else.
package all

import (
	_ "github.com/switchboard-dev/switchboard/dns/plugin/acl"
	_ "github.com/switchboard-dev/switchboard/dns/plugin/alias"
	_ "github.com/switchboard-dev/switchboard/dns/plugin/any"
	_ "github.com/switchboard-dev/switchboard/dns/plugin/bind"
	_ "github.com/switchboard-dev/switchboard/dns/plugin/cache"
	_ "github.com/switchboard-dev/switchboard/dns/plugin/errors"
	_ "github.com/switchboard-dev/switchboard/dns/plugin/file"
	_ "github.com/switchboard-dev/switchboard/dns/plugin/forward"
	_ "github.com/switchboard-dev/switchboard/dns/plugin/git"
	_ "github.com/switchboard-dev/switchboard/dns/plugin/health"
	_ "github.com/switchboard-dev/switchboard/dns/plugin/hosts"
	_ "github.com/switchboard-dev/switchboard/dns/plugin/kubernetes"
	_ "github.com/switchboard-dev/switchboard/dns/plugin/loadbalance"
	_ "github.com/switchboard-dev/switchboard/dns/plugin/log"
	_ "github.com/switchboard-dev/switchboard/dns/plugin/prometheus"
	_ "github.com/switchboard-dev/switchboard/dns/plugin/ready"
	_ "github.com/switchboard-dev/switchboard/dns/plugin/reload"
)
