package admission

import (
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func validateDeployment(d, old *appsv1.Deployment) field.ErrorList {
	errs := validateMeta(d, apivalidation.NameIsDNSSubdomain)
	sp := field.NewPath("spec")
	errs = append(errs, validateReplicas(d.Spec.Replicas, sp.Child("replicas"))...)
	errs = append(errs, validateSelectorAndTemplate(d.Spec.Selector, &d.Spec.Template, "Deployment", sp)...)
	errs = append(errs, validateNonnegative(int64(d.Spec.MinReadySeconds), sp.Child("minReadySeconds"))...)
	if d.Spec.RevisionHistoryLimit != nil {
		errs = append(errs, validateNonnegative(int64(*d.Spec.RevisionHistoryLimit), sp.Child("revisionHistoryLimit"))...)
	}
	if d.Spec.ProgressDeadlineSeconds != nil {
		pds := *d.Spec.ProgressDeadlineSeconds
		errs = append(errs, validateNonnegative(int64(pds), sp.Child("progressDeadlineSeconds"))...)
		if pds <= d.Spec.MinReadySeconds {
			errs = append(errs, field.Invalid(sp.Child("progressDeadlineSeconds"), pds, "must be greater than minReadySeconds"))
		}
	}
	errs = append(errs, validateDeploymentStrategy(&d.Spec.Strategy, sp.Child("strategy"))...)
	if old != nil {
		errs = append(errs, apivalidation.ValidateImmutableField(d.Spec.Selector, old.Spec.Selector, sp.Child("selector"))...)
	}
	return errs
}

func validateReplicaSet(rs, old *appsv1.ReplicaSet) field.ErrorList {
	errs := validateMeta(rs, apivalidation.NameIsDNSSubdomain)
	sp := field.NewPath("spec")
	errs = append(errs, validateReplicas(rs.Spec.Replicas, sp.Child("replicas"))...)
	errs = append(errs, validateSelectorAndTemplate(rs.Spec.Selector, &rs.Spec.Template, "ReplicaSet", sp)...)
	errs = append(errs, validateNonnegative(int64(rs.Spec.MinReadySeconds), sp.Child("minReadySeconds"))...)
	if old != nil {
		errs = append(errs, apivalidation.ValidateImmutableField(rs.Spec.Selector, old.Spec.Selector, sp.Child("selector"))...)
	}
	return errs
}

func validateReplicas(r *int32, fld *field.Path) field.ErrorList {
	if r == nil {
		return field.ErrorList{field.Required(fld, "")}
	}
	return validateNonnegative(int64(*r), fld)
}

// validateSelectorAndTemplate holds the rules a Deployment and a ReplicaSet
// share: a non-empty selector matching the template's labels, and a pod
// template whose restartPolicy is Always.
func validateSelectorAndTemplate(sel *metav1.LabelSelector, t *corev1.PodTemplateSpec, kind string, sp *field.Path) field.ErrorList {
	var errs field.ErrorList
	tp := sp.Child("template")
	if sel == nil {
		errs = append(errs, field.Required(sp.Child("selector"), ""))
	} else {
		selErrs := validateLabelSelector(sel, sp.Child("selector"))
		errs = append(errs, selErrs...)
		if len(sel.MatchLabels)+len(sel.MatchExpressions) == 0 {
			errs = append(errs, field.Invalid(sp.Child("selector"), sel, "empty selector is invalid for "+strings.ToLower(kind)))
		} else if len(selErrs) == 0 {
			s, err := metav1.LabelSelectorAsSelector(sel)
			if err == nil && !s.Matches(labels.Set(t.Labels)) {
				errs = append(errs, field.Invalid(tp.Child("metadata", "labels"), t.Labels, "`selector` does not match template `labels`"))
			}
		}
	}
	errs = append(errs, metav1validation.ValidateLabels(t.Labels, tp.Child("metadata", "labels"))...)
	errs = append(errs, apivalidation.ValidateAnnotations(t.Annotations, tp.Child("metadata", "annotations"))...)
	errs = append(errs, validatePodSpec(&t.Spec, tp.Child("spec"))...)
	if t.Spec.RestartPolicy != "" && t.Spec.RestartPolicy != corev1.RestartPolicyAlways {
		errs = append(errs, field.NotSupported(tp.Child("spec", "restartPolicy"), t.Spec.RestartPolicy, []corev1.RestartPolicy{corev1.RestartPolicyAlways}))
	}
	if t.Spec.ActiveDeadlineSeconds != nil {
		errs = append(errs, field.Forbidden(tp.Child("spec", "activeDeadlineSeconds"), "activeDeadlineSeconds in "+kind+" is not Supported"))
	}
	return errs
}

var supportedDeploymentStrategies = []appsv1.DeploymentStrategyType{appsv1.RecreateDeploymentStrategyType, appsv1.RollingUpdateDeploymentStrategyType}

func validateDeploymentStrategy(st *appsv1.DeploymentStrategy, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch st.Type {
	case appsv1.RecreateDeploymentStrategyType:
		if st.RollingUpdate != nil {
			errs = append(errs, field.Forbidden(fld.Child("rollingUpdate"), "may not be specified when strategy `type` is '"+string(appsv1.RecreateDeploymentStrategyType)+"'"))
		}
	case appsv1.RollingUpdateDeploymentStrategyType:
		if st.RollingUpdate == nil {
			errs = append(errs, field.Required(fld.Child("rollingUpdate"), "this should be defaulted and never be nil"))
			break
		}
		ru := st.RollingUpdate
		rp := fld.Child("rollingUpdate")
		if ru.MaxUnavailable != nil {
			errs = append(errs, validatePositiveIntOrPercent(*ru.MaxUnavailable, rp.Child("maxUnavailable"))...)
			if v, pct, ok := intOrPercent(*ru.MaxUnavailable); ok && pct && v > 100 {
				errs = append(errs, field.Invalid(rp.Child("maxUnavailable"), ru.MaxUnavailable.String(), "must not be greater than 100%"))
			}
		}
		if ru.MaxSurge != nil {
			errs = append(errs, validatePositiveIntOrPercent(*ru.MaxSurge, rp.Child("maxSurge"))...)
		}
		if isZero(ru.MaxUnavailable) && isZero(ru.MaxSurge) {
			// "Both MaxSurge and MaxUnavailable cannot be zero."
			errs = append(errs, field.Invalid(rp.Child("maxUnavailable"), ru.MaxUnavailable.String(), "may not be 0 when `maxSurge` is 0"))
		}
	case "":
		errs = append(errs, field.Required(fld.Child("type"), ""))
	default:
		errs = append(errs, field.NotSupported(fld.Child("type"), st.Type, supportedDeploymentStrategies))
	}
	return errs
}

// intOrPercent returns the number and whether it is a percentage.
func intOrPercent(v intstr.IntOrString) (int, bool, bool) {
	if v.Type == intstr.Int {
		return v.IntValue(), false, true
	}
	if len(validation.IsValidPercent(v.StrVal)) != 0 {
		return 0, true, false
	}
	n, err := strconv.Atoi(strings.TrimSuffix(v.StrVal, "%"))
	return n, true, err == nil
}

func isZero(v *intstr.IntOrString) bool {
	if v == nil {
		return false
	}
	n, _, ok := intOrPercent(*v)
	return ok && n == 0
}

// validatePositiveIntOrPercent: a non-negative integer or a percentage
// string such as "25%".
func validatePositiveIntOrPercent(v intstr.IntOrString, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	if v.Type == intstr.String {
		for _, msg := range validation.IsValidPercent(v.StrVal) {
			errs = append(errs, field.Invalid(fld, v.StrVal, msg))
		}
	} else {
		errs = append(errs, validateNonnegative(int64(v.IntValue()), fld)...)
	}
	return errs
}
