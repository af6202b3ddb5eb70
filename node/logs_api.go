package node

// LogOptions select what StreamLogs writes, as the query parameters of
// GET /api/v1/namespaces/NS/pods/NAME/log (corev1.PodLogOptions).
type LogOptions struct {
	Container    string // "" = the pod's only container (an error names the choices when there are several)
	Follow       bool   // keep streaming until the container instance ends or ctx is done
	Previous     bool   // the previous instance of the container (after a restart)
	Timestamps   bool   // prefix each line with its RFC3339Nano time
	TailLines    *int64 // only the last N lines
	SinceSeconds *int64 // only lines newer than this
}
