package localapi

import (
	"fmt"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/switchboard-dev/switchboard/cluster"
)

// selectableFields returns the fields a field selector can match on, for
// each kind exactly the set the API server's registry publishes
// (GetAttrs / ToSelectableFields); every kind has metadata.name and
// metadata.namespace.
func selectableFields(obj cluster.Object) fields.Set {
	set := fields.Set{
		"metadata.name":      obj.GetName(),
		"metadata.namespace": obj.GetNamespace(),
	}
	switch o := obj.(type) {
	case *corev1.Pod:
		set["spec.nodeName"] = o.Spec.NodeName
		set["spec.restartPolicy"] = string(o.Spec.RestartPolicy)
		set["spec.schedulerName"] = o.Spec.SchedulerName
		set["spec.serviceAccountName"] = o.Spec.ServiceAccountName
		set["spec.hostNetwork"] = strconv.FormatBool(o.Spec.HostNetwork)
		set["status.phase"] = string(o.Status.Phase)
		podIP := ""
		if len(o.Status.PodIPs) > 0 {
			podIP = o.Status.PodIPs[0].IP
		} else {
			podIP = o.Status.PodIP
		}
		set["status.podIP"] = podIP
		set["status.nominatedNodeName"] = o.Status.NominatedNodeName
	case *corev1.Event:
		source := o.Source.Component
		if source == "" {
			source = o.ReportingController
		}
		set["involvedObject.kind"] = o.InvolvedObject.Kind
		set["involvedObject.namespace"] = o.InvolvedObject.Namespace
		set["involvedObject.name"] = o.InvolvedObject.Name
		set["involvedObject.uid"] = string(o.InvolvedObject.UID)
		set["involvedObject.apiVersion"] = o.InvolvedObject.APIVersion
		set["involvedObject.resourceVersion"] = o.InvolvedObject.ResourceVersion
		set["involvedObject.fieldPath"] = o.InvolvedObject.FieldPath
		set["reason"] = o.Reason
		set["reportingComponent"] = o.ReportingController
		set["source"] = source
		set["type"] = o.Type
	case *corev1.Secret:
		set["type"] = string(o.Type)
	case *corev1.Namespace:
		set["status.phase"] = string(o.Status.Phase)
	case *corev1.Node:
		set["spec.unschedulable"] = strconv.FormatBool(o.Spec.Unschedulable)
	case *corev1.Service:
		set["spec.clusterIP"] = o.Spec.ClusterIP
		set["spec.type"] = string(o.Spec.Type)
	case *appsv1.ReplicaSet:
		set["status.replicas"] = strconv.Itoa(int(o.Status.Replicas))
	}
	return set
}

// fieldLabels lists the labels each kind's selectors accept: those of
// selectableFields for an empty object of the kind.
var fieldLabels = func() map[*cluster.Kind]map[string]bool {
	m := map[*cluster.Kind]map[string]bool{}
	for _, k := range cluster.Kinds {
		m[k] = map[string]bool{}
		for l := range selectableFields(k.New()) {
			m[k][l] = true
		}
	}
	return m
}()

// parseFieldSelector parses a fieldSelector query parameter and checks its
// labels against the kind's, with the API server's messages: kinds with
// their own fields say "field label not supported", the others
// (runtime.DefaultMetaV1FieldSelectorConversion) name the two metadata
// fields. The result is nil for an empty selector.
func parseFieldSelector(k *cluster.Kind, s string) (fields.Selector, error) {
	if s == "" {
		return nil, nil
	}
	sel, err := fields.ParseSelector(s)
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid field selector %q: %v", s, err))
	}
	_, err = sel.Transform(func(label, value string) (string, string, error) {
		if fieldLabels[k][label] {
			return label, value, nil
		}
		if len(fieldLabels[k]) > 2 {
			return "", "", fmt.Errorf("field label not supported: %s", label)
		}
		return "", "", fmt.Errorf("%q is not a known field selector: only %q, %q", label, "metadata.name", "metadata.namespace")
	})
	if err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	if sel.Empty() {
		return nil, nil
	}
	return sel, nil
}

// fieldFilter is the store watch/list predicate of a field selector.
func fieldFilter(sel fields.Selector) func(cluster.Object) bool {
	if sel == nil {
		return nil
	}
	return func(o cluster.Object) bool { return sel.Matches(selectableFields(o)) }
}
