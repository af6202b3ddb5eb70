// Package admission is what an API server does to every write before it is
// stored: defaulting (Default) and validation (Validate), as
// k8s.io/kubernetes does in pkg/apis/*/v1/defaults.go, the registries'
// PrepareForCreate/PrepareForUpdate, and pkg/apis/*/validation. Both are
// cluster.AdmitFunc steps for cluster.Store.Use:
//
//	store.Use(admission.Default, admission.Validate, allocator)
//
// Validation errors are apierrors Invalid errors whose causes carry field
// paths (spec.containers[0].ports[1].containerPort), exactly as a real API
// server reports them, so every source (manifest files, the local API)
// shows the same messages.
//
// Switchboard-specific rules, stated in the messages: a container's
// `command` is required, because Switchboard runs commands as local
// processes and never pulls images (so it cannot know an image's
// entrypoint); `image` is therefore optional.
//
// This package owns defaulting and validation only. It never calls the
// store (admission steps run under the store's lock), allocates nothing
// (cluster IPs and node ports belong to the service allocator) and keeps
// no state.
package admission
