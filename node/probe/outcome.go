package probe

import (
	"fmt"
	"runtime/debug"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
)

// outcome is one attempt's verdict before it is folded into a Result, as
// kubelet's pkg/probe.Result: a Warning is a success that also records a
// ProbeWarning event (an httpGet redirect that was not followed), and
// Unknown is what a handler reports together with an error when it could
// not run at all. The strings are upstream's.
type outcome int

const (
	outcomeUnknown outcome = iota
	outcomeSuccess
	outcomeWarning
	outcomeFailure
)

func (o outcome) String() string {
	switch o {
	case outcomeSuccess:
		return "success"
	case outcomeWarning:
		return "warning"
	case outcomeFailure:
		return "failure"
	}
	return "unknown"
}

// maxReadLength bounds what a probe keeps of an httpGet body or an exec
// command's output: "the kubelet stops reading the response body after
// 10KiB" (kubernetes.io, Configure Liveness, Readiness and Startup Probes).
const maxReadLength = 10 << 10

// userAgent is "kube-probe/<major>.<minor>" as kubelet sends it. The
// version is the Kubernetes release matching the k8s.io/api module this
// binary is built with (v0.X.Y is Kubernetes 1.X).
var userAgent = sync.OnceValue(func() string {
	return "kube-probe/" + kubeVersion()
})

// fallbackKubeVersion is used when build information is unavailable; keep
// it in step with the k8s.io/api version in go.mod.
const fallbackKubeVersion = "1.37"

func kubeVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return fallbackKubeVersion
	}
	for _, d := range bi.Deps {
		if d.Path != "k8s.io/api" {
			continue
		}
		v := d.Version
		if d.Replace != nil {
			v = d.Replace.Version
		}
		// v0.37.2 -> 1.37
		parts := strings.SplitN(strings.TrimPrefix(v, "v"), ".", 3)
		if len(parts) >= 2 && parts[0] == "0" && parts[1] != "" {
			return "1." + parts[1]
		}
	}
	return fallbackKubeVersion
}

// podDesc names a pod as kubelet's format.Pod does: name_namespace(uid).
func podDesc(pod *corev1.Pod) string {
	if pod == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%s_%s(%s)", pod.Name, pod.Namespace, pod.UID)
}

// limitBytes keeps the first maxReadLength bytes, as kubelet's LimitWriter
// does for exec output.
func limitBytes(b []byte) []byte {
	if len(b) > maxReadLength {
		return b[:maxReadLength]
	}
	return b
}
