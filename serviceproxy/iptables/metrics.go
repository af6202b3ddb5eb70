package iptables

import "time"

// observeSync counts a failed restore in the core's metrics, as upstream:
// kubeproxy_sync_proxy_rules_iptables_restore_failures_total for every
// failure, and ..._iptables_partial_restore_failures_total when the
// failed sync was a partial one (the next one is full). Sync durations
// and the last-sync timestamp are the core's to observe.
func (p *Proxier) observeSync(_ bool, partial bool, _ time.Duration, ok bool, _ *renderResult) {
	m := p.cfg.Metrics
	if ok || m == nil {
		return
	}
	if m.IPTablesRestoreFailuresTotal != nil {
		m.IPTablesRestoreFailuresTotal.Inc()
	}
	if partial && m.IPTablesPartialRestoreFailuresTotal != nil {
		m.IPTablesPartialRestoreFailuresTotal.Inc()
	}
}
