package admission

import (
	"net/netip"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/switchboard-dev/switchboard/cluster"
)

// Validate checks obj on CREATE and UPDATE as the API server's validation
// does (k8s.io/kubernetes pkg/apis/*/validation), for what users commonly
// get wrong: names, labels, selectors, ports, probes, references, and the
// fields that are immutable on update. It returns nil or an apierrors
// Invalid error (422) whose causes each name a field path, such as
// "spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535,
// inclusive". Run it after Default.
func Validate(op cluster.Operation, obj, old cluster.Object) error {
	if op != cluster.OpCreate && op != cluster.OpUpdate {
		return nil
	}
	if op == cluster.OpCreate {
		old = nil
	}
	k := cluster.KindOf(obj)
	if k == nil {
		return nil
	}
	errs := validateObject(obj, old)
	if len(errs) == 0 {
		return nil
	}
	return apierrors.NewInvalid(schema.GroupKind{Group: k.GVK.Group, Kind: k.GVK.Kind}, obj.GetName(), errs)
}

// ValidateObject returns the validation errors of obj (old is nil on
// create), without wrapping them in an API error.
func ValidateObject(obj, old cluster.Object) field.ErrorList {
	return validateObject(obj, old)
}

func validateObject(obj, old cluster.Object) field.ErrorList {
	switch o := obj.(type) {
	case *corev1.Pod:
		op, _ := old.(*corev1.Pod)
		return validatePod(o, op)
	case *appsv1.Deployment:
		od, _ := old.(*appsv1.Deployment)
		return validateDeployment(o, od)
	case *appsv1.ReplicaSet:
		or, _ := old.(*appsv1.ReplicaSet)
		return validateReplicaSet(o, or)
	case *corev1.Service:
		os, _ := old.(*corev1.Service)
		return validateService(o, os)
	case *discoveryv1.EndpointSlice:
		oe, _ := old.(*discoveryv1.EndpointSlice)
		return validateEndpointSlice(o, oe)
	case *networkingv1.Ingress:
		return validateIngress(o)
	case *networkingv1.IngressClass:
		return validateIngressClass(o)
	case *networkingv1.NetworkPolicy:
		return validateNetworkPolicy(o)
	case *corev1.ConfigMap:
		oc, _ := old.(*corev1.ConfigMap)
		return validateConfigMap(o, oc)
	case *corev1.Secret:
		os, _ := old.(*corev1.Secret)
		return validateSecret(o, os)
	case *corev1.Namespace:
		return validateMeta(obj, apivalidation.ValidateNamespaceName)
	case *corev1.ServiceAccount:
		return validateMeta(obj, apivalidation.ValidateServiceAccountName)
	case *corev1.Event:
		// Events are named by their recorders (object name plus a
		// suffix); only their metadata's other rules apply.
		return validateMeta(obj, func(string, bool) []string { return nil })
	default:
		// Node and anything else: metadata only.
		return validateMeta(obj, apivalidation.NameIsDNSSubdomain)
	}
}

// validateMeta is ValidateObjectMeta: name (by the kind's rule), namespace
// (required for namespaced kinds, a DNS-1123 label), labels, annotations,
// owner references and finalizers.
func validateMeta(obj cluster.Object, nameFn apivalidation.ValidateNameFunc) field.ErrorList {
	k := cluster.KindOf(obj)
	return apivalidation.ValidateObjectMetaAccessor(obj, k != nil && k.Namespaced, nameFn, field.NewPath("metadata"))
}

// validatePortNumOrName is ValidatePortNumOrName: a number 1-65535 or an
// IANA_SVC_NAME.
func validatePortNumOrName(port intstr.IntOrString, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	if port.Type == intstr.Int {
		for _, msg := range validation.IsValidPortNum(port.IntValue()) {
			errs = append(errs, field.Invalid(fld, port.IntValue(), msg))
		}
	} else {
		for _, msg := range validation.IsValidPortName(port.StrVal) {
			errs = append(errs, field.Invalid(fld, port.StrVal, msg))
		}
	}
	return errs
}

func validatePortNum(port int32, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsValidPortNum(int(port)) {
		errs = append(errs, field.Invalid(fld, port, msg))
	}
	return errs
}

func validateDNS1123Label(v string, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsDNS1123Label(v) {
		errs = append(errs, field.Invalid(fld, v, msg))
	}
	return errs
}

func validateDNS1123Subdomain(v string, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsDNS1123Subdomain(v) {
		errs = append(errs, field.Invalid(fld, v, msg))
	}
	return errs
}

func validateDNS1035Label(v string, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsDNS1035Label(v) {
		errs = append(errs, field.Invalid(fld, v, msg))
	}
	return errs
}

func validateNonnegative(v int64, fld *field.Path) field.ErrorList {
	return apivalidation.ValidateNonnegativeField(v, fld)
}

var supportedPortProtocols = []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP}

func validateProtocol(p corev1.Protocol, fld *field.Path) field.ErrorList {
	if p == "" {
		return field.ErrorList{field.Required(fld, "")}
	}
	for _, s := range supportedPortProtocols {
		if p == s {
			return nil
		}
	}
	return field.ErrorList{field.NotSupported(fld, p, supportedPortProtocols)}
}

func validateIP(v string, fld *field.Path) field.ErrorList {
	return validation.IsValidIPForLegacyField(fld, v, false, nil)
}

func validateCIDR(v string, fld *field.Path) field.ErrorList {
	return validation.IsValidCIDRForLegacyField(fld, v, false, nil)
}

func isIP(v string) bool {
	_, err := netip.ParseAddr(v)
	return err == nil
}

// validateLabelSelector is ValidateLabelSelector with the API's options.
func validateLabelSelector(sel *metav1.LabelSelector, fld *field.Path) field.ErrorList {
	return metav1validation.ValidateLabelSelector(sel, metav1validation.LabelSelectorValidationOptions{}, fld)
}

func validateSelectorLabels(m map[string]string, fld *field.Path) field.ErrorList {
	return metav1validation.ValidateLabels(m, fld)
}

// quote formats a list of names for messages: `a`, `b` or `c`.
func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = "`" + n + "`"
	}
	if len(q) <= 1 {
		return strings.Join(q, "")
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}
