package localapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/apimachinery/pkg/util/validation/field"
	kjson "sigs.k8s.io/json"

	"github.com/switchboard-dev/switchboard/cluster"
)

// The scale subresource (autoscaling/v1 Scale) of the kinds that have
// replicas, as kubectl scale and autoscalers use it.

func hasScale(k *cluster.Kind) bool {
	return k == cluster.KindDeployment || k == cluster.KindReplicaSet
}

// replicas returns the replica count field and selector of a scalable
// object; an unset count is Kubernetes' default of 1.
func replicas(o cluster.Object) (**int32, *metav1.LabelSelector, int32) {
	switch x := o.(type) {
	case *appsv1.Deployment:
		return &x.Spec.Replicas, x.Spec.Selector, x.Status.Replicas
	case *appsv1.ReplicaSet:
		return &x.Spec.Replicas, x.Spec.Selector, x.Status.Replicas
	}
	return nil, nil, 0
}

func scaleOf(o cluster.Object) *autoscalingv1.Scale {
	spec, sel, status := replicas(o)
	want := int32(1)
	if spec != nil && *spec != nil {
		want = **spec
	}
	selector := ""
	if s, err := metav1.LabelSelectorAsSelector(sel); err == nil && sel != nil {
		selector = s.String()
	}
	return &autoscalingv1.Scale{
		TypeMeta: metav1.TypeMeta{Kind: "Scale", APIVersion: "autoscaling/v1"},
		ObjectMeta: metav1.ObjectMeta{
			Name: o.GetName(), Namespace: o.GetNamespace(), UID: o.GetUID(),
			ResourceVersion: o.GetResourceVersion(), CreationTimestamp: o.GetCreationTimestamp(),
		},
		Spec:   autoscalingv1.ScaleSpec{Replicas: want},
		Status: autoscalingv1.ScaleStatus{Replicas: status, Selector: selector},
	}
}

func decodeScale(body []byte, r *http.Request) (*autoscalingv1.Scale, error) {
	sc := &autoscalingv1.Scale{}
	if mediaType(r) == runtime.ContentTypeProtobuf {
		if _, _, err := protobufSerializer.Decode(body, nil, sc); err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("the request body is not a protobuf Scale: %v", err))
		}
		return sc, nil
	}
	strictErrs, err := kjson.UnmarshalStrict(body, sc, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the request body is not a Scale: %v", err))
	}
	if len(strictErrs) > 0 {
		return nil, apierrors.NewBadRequest(runtime.NewStrictDecodingError(strictErrs).Error())
	}
	if sc.APIVersion != "" && sc.APIVersion != "autoscaling/v1" || sc.Kind != "" && sc.Kind != "Scale" {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the body is a %s %s, not an autoscaling/v1 Scale", sc.APIVersion, sc.Kind))
	}
	return sc, nil
}

// setScale stores the replica count of sc, with its resourceVersion (if
// any) as a precondition.
func (s *server) setScale(rr *resourceRequest, next func(cur *autoscalingv1.Scale) (*autoscalingv1.Scale, error)) (cluster.Object, error) {
	return s.store.UpdateFunc(rr.kind, rr.namespace, rr.name, func(o cluster.Object) error {
		sc, err := next(scaleOf(o))
		if err != nil {
			return err
		}
		if sc.Name != "" && sc.Name != rr.name {
			return apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", sc.Name, rr.name))
		}
		if sc.ResourceVersion != "" && sc.ResourceVersion != o.GetResourceVersion() {
			return apierrors.NewConflict(rr.groupResource(), rr.name, errors.New("the object has been modified; please apply your changes to the latest version and try again"))
		}
		if sc.Spec.Replicas < 0 {
			return apierrors.NewInvalid(autoscalingv1.SchemeGroupVersion.WithKind("Scale").GroupKind(), rr.name, field.ErrorList{
				field.Invalid(field.NewPath("spec", "replicas"), sc.Spec.Replicas, "must be greater than or equal to 0"),
			})
		}
		spec, _, _ := replicas(o)
		n := sc.Spec.Replicas
		*spec = &n
		return nil
	})
}

func (s *server) serveScale(w http.ResponseWriter, r *http.Request, rr *resourceRequest) {
	var (
		out cluster.Object
		err error
	)
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		out, err = s.store.Get(rr.kind, rr.namespace, rr.name)
	case http.MethodPut:
		var body []byte
		if body, err = readBody(r); err == nil {
			var sc *autoscalingv1.Scale
			if sc, err = decodeScale(body, r); err == nil {
				out, err = s.setScale(rr, func(*autoscalingv1.Scale) (*autoscalingv1.Scale, error) { return sc, nil })
			}
		}
	case http.MethodPatch:
		pt := types.PatchType(mediaType(r))
		if pt != types.JSONPatchType && pt != types.MergePatchType && pt != types.StrategicMergePatchType {
			writeError(w, r, errUnsupportedMediaType(r.Header.Get("Content-Type"), patchTypes...))
			return
		}
		var patch []byte
		if patch, err = readBody(r); err == nil {
			out, err = s.setScale(rr, func(cur *autoscalingv1.Scale) (*autoscalingv1.Scale, error) {
				orig, _ := json.Marshal(cur)
				var patched []byte
				var err error
				switch pt {
				case types.JSONPatchType:
					var p jsonpatch.Patch
					if p, err = jsonpatch.DecodePatch(patch); err == nil {
						patched, err = p.Apply(orig)
					}
				case types.MergePatchType:
					patched, err = jsonpatch.MergePatch(orig, patch)
				default:
					patched, err = strategicpatch.StrategicMergePatch(orig, patch, &autoscalingv1.Scale{})
				}
				if err != nil {
					return nil, apierrors.NewBadRequest(fmt.Sprintf("applying the patch to the Scale: %v", err))
				}
				sc := &autoscalingv1.Scale{}
				if err := json.Unmarshal(patched, sc); err != nil {
					return nil, apierrors.NewBadRequest(fmt.Sprintf("the patched Scale does not decode: %v", err))
				}
				return sc, nil
			})
		}
	default:
		err = errMethodNotAllowed(r, rr.groupResource(), rr.name)
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeObject(w, r, http.StatusOK, scaleOf(out))
}
