package cnicmd

import "testing"

func TestDispatch(t *testing.T) {
	cases := []struct {
		name, argv0, stdin string
		ipam               bool
	}{
		{"our plugin", "/opt/cni/bin/switchboard", `{"type":"switchboard","ipam":{"type":"switchboard-ipam"}}`, false},
		{"delegated from the reference bridge (\"The delegated plugin must receive all the same environment variables\" and the same config)", "/opt/cni/bin/switchboard", `{"type":"bridge","ipam":{"type":"switchboard-ipam"}}`, true},
		{"called by its IPAM name", "/opt/cni/bin/switchboard-ipam", `{"type":"bridge"}`, true},
		{"other IPAM type", "switchboard", `{"type":"bridge","ipam":{"type":"host-local"}}`, false},
		{"undecodable: the plugin reports it", "switchboard", `{`, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := asIPAM(c.argv0, []byte(c.stdin)); got != c.ipam {
				t.Errorf("asIPAM = %v, want %v", got, c.ipam)
			}
		})
	}
}

func TestIsPluginInvocation(t *testing.T) {
	env := func(cmd string) func(string) string {
		return func(k string) string {
			if k == "CNI_COMMAND" {
				return cmd
			}
			return ""
		}
	}
	cases := []struct {
		argv0, cmd string
		want       bool
	}{
		{"/opt/cni/bin/switchboard", "ADD", true},
		{"switchboard-ipam", "DEL", true},
		{"/usr/local/bin/switchboard", "", false},
		{"/usr/bin/other", "ADD", false},
	}
	for _, c := range cases {
		if got := IsPluginInvocation(c.argv0, env(c.cmd)); got != c.want {
			t.Errorf("IsPluginInvocation(%q, CNI_COMMAND=%q) = %v, want %v", c.argv0, c.cmd, got, c.want)
		}
	}
	if NewCommand().Use != "cni" {
		t.Errorf("command name")
	}
}
