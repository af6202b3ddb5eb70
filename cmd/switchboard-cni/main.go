// Command switchboard-cni is Switchboard's CNI plugin alone: the same code
// as `switchboard cni` (cni/cnicmd), in a binary that starts in a quarter
// of the time (the full binary spends ~17 ms in package initialisation,
// mostly client-go's scheme; a runtime starts the plugin for every ADD
// and DEL). Install it in a CNI bin dir as "switchboard", with a link
// "switchboard-ipam" to it:
//
//	go build -o /opt/cni/bin/switchboard ./cmd/switchboard-cni
//	ln -s switchboard /opt/cni/bin/switchboard-ipam
package main

import "github.com/switchboard-dev/switchboard/cni/cnicmd"

func main() { cnicmd.Main() }
