package plugin

import "testing"

// Bad input never panics: ParseConfig returns an error or a config.
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{
		`{"cniVersion":"1.1.0","name":"n","type":"switchboard","ipam":{"ranges":[[{"subnet":"10.0.0.0/24"}]]}}`,
		`{"cniVersion":"1.1.0","name":"n","type":"switchboard","bridge":"b","mtu":1400,"ipam":{"subnet":"fd00::/64","routes":[{"dst":"::/0"}]}}`,
		`{"name":"n","ipam":{"type":"host-local"},"prevResult":{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.2/24"}]}}`,
		`{"vlan":3}`, `{"ipam":{"ranges":[[{"subnet":"10.0.0.0/31"}]]}}`, `[]`, `{`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := ParseConfig(b)
		if err == nil && n.inProcessIPAM() && len(n.IPAMConf.Ranges) == 0 {
			t.Errorf("accepted in-process IPAM without ranges: %s", b)
		}
	})
}
