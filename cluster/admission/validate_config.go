package admission

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// maxConfigSize is the API's limit on a ConfigMap's or Secret's data
// (corev1.MaxSecretSize, 1 MiB).
const maxConfigSize = corev1.MaxSecretSize

// validateConfigMap is ValidateConfigMap(Update): keys are IsConfigMapKey
// ("alphanumeric characters, '-', '_' or '.'"), unique across data and
// binaryData, at most 1 MiB in total; an immutable ConfigMap keeps its data.
func validateConfigMap(cm, old *corev1.ConfigMap) field.ErrorList {
	errs := validateMeta(cm, apivalidation.NameIsDNSSubdomain)
	size := 0
	for k, v := range cm.Data {
		errs = append(errs, validateConfigKey(k, field.NewPath("data").Key(k))...)
		size += len(k) + len(v)
	}
	for k, v := range cm.BinaryData {
		kp := field.NewPath("binaryData").Key(k)
		errs = append(errs, validateConfigKey(k, kp)...)
		if _, ok := cm.Data[k]; ok {
			errs = append(errs, field.Invalid(kp, k, "duplicate of key present in data"))
		}
		size += len(k) + len(v)
	}
	if size > maxConfigSize {
		errs = append(errs, field.TooLong(field.NewPath("data"), "", maxConfigSize))
	}
	if old != nil && old.Immutable != nil && *old.Immutable {
		if cm.Immutable == nil || !*cm.Immutable {
			errs = append(errs, field.Forbidden(field.NewPath("immutable"), "field is immutable when `immutable` is set"))
		}
		if !apiequality.Semantic.DeepEqual(cm.Data, old.Data) {
			errs = append(errs, field.Forbidden(field.NewPath("data"), "field is immutable when `immutable` is set"))
		}
		if !apiequality.Semantic.DeepEqual(cm.BinaryData, old.BinaryData) {
			errs = append(errs, field.Forbidden(field.NewPath("binaryData"), "field is immutable when `immutable` is set"))
		}
	}
	return errs
}

func validateConfigKey(k string, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsConfigMapKey(k) {
		errs = append(errs, field.Invalid(fld, k, msg))
	}
	return errs
}

// validateSecret is ValidateSecret(Update), with the type-specific keys of
// kubernetes.io/tls, kubernetes.io/dockerconfigjson,
// kubernetes.io/dockercfg, kubernetes.io/basic-auth, kubernetes.io/ssh-auth
// and kubernetes.io/service-account-token.
func validateSecret(s, old *corev1.Secret) field.ErrorList {
	errs := validateMeta(s, apivalidation.NameIsDNSSubdomain)
	dp := field.NewPath("data")
	size := 0
	for k, v := range s.Data {
		errs = append(errs, validateConfigKey(k, dp.Key(k))...)
		size += len(v)
	}
	for k, v := range s.StringData {
		errs = append(errs, validateConfigKey(k, field.NewPath("stringData").Key(k))...)
		size += len(v)
	}
	if size > maxConfigSize {
		errs = append(errs, field.TooLong(dp, "", maxConfigSize))
	}
	has := func(k string) bool {
		if _, ok := s.Data[k]; ok {
			return true
		}
		_, ok := s.StringData[k]
		return ok
	}
	require := func(keys ...string) {
		for _, k := range keys {
			if !has(k) {
				errs = append(errs, field.Required(dp.Key(k), ""))
			}
		}
	}
	switch s.Type {
	case corev1.SecretTypeTLS:
		require(corev1.TLSCertKey, corev1.TLSPrivateKeyKey)
	case corev1.SecretTypeDockerConfigJson:
		require(corev1.DockerConfigJsonKey)
	case corev1.SecretTypeDockercfg:
		require(corev1.DockerConfigKey)
	case corev1.SecretTypeSSHAuth:
		require(corev1.SSHAuthPrivateKey)
	case corev1.SecretTypeBasicAuth:
		if !has(corev1.BasicAuthUsernameKey) && !has(corev1.BasicAuthPasswordKey) {
			errs = append(errs, field.Required(dp, fmt.Sprintf("must contain %s or %s", corev1.BasicAuthUsernameKey, corev1.BasicAuthPasswordKey)))
		}
	case corev1.SecretTypeServiceAccountToken:
		if s.Annotations[corev1.ServiceAccountNameKey] == "" {
			errs = append(errs, field.Required(field.NewPath("metadata", "annotations").Key(corev1.ServiceAccountNameKey), ""))
		}
	}
	if old != nil {
		errs = append(errs, apivalidation.ValidateImmutableField(s.Type, old.Type, field.NewPath("type"))...)
		if old.Immutable != nil && *old.Immutable {
			if s.Immutable == nil || !*s.Immutable {
				errs = append(errs, field.Forbidden(field.NewPath("immutable"), "field is immutable when `immutable` is set"))
			}
			if !apiequality.Semantic.DeepEqual(s.Data, old.Data) {
				errs = append(errs, field.Forbidden(dp, "field is immutable when `immutable` is set"))
			}
		}
	}
	return errs
}
