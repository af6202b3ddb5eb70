package admission

import corev1 "k8s.io/api/core/v1"

// qosResources are the resources that decide a pod's QoS class.
var qosResources = map[corev1.ResourceName]bool{corev1.ResourceCPU: true, corev1.ResourceMemory: true}

// PodQOSClass computes a pod's QoS class as k8s.io/kubernetes
// pkg/apis/core/v1/helper/qos.ComputePodQOS does: "BestEffort" when no
// container has CPU or memory requests or limits; "Guaranteed" when every
// container has CPU and memory limits and its requests equal them (pod-level
// resources, when set, decide alone); "Burstable" otherwise.
func PodQOSClass(pod *corev1.Pod) corev1.PodQOSClass {
	requests := corev1.ResourceList{}
	limits := corev1.ResourceList{}
	guaranteed := true
	add := func(dst corev1.ResourceList, src corev1.ResourceList) {
		for name, q := range src {
			if !qosResources[name] || q.Sign() <= 0 {
				continue
			}
			if cur, ok := dst[name]; ok {
				cur.Add(q)
				dst[name] = cur
			} else {
				dst[name] = q.DeepCopy()
			}
		}
	}
	consider := func(r corev1.ResourceRequirements) {
		add(requests, r.Requests)
		found := map[corev1.ResourceName]bool{}
		for name, q := range r.Limits {
			if qosResources[name] && q.Sign() > 0 {
				found[name] = true
			}
		}
		add(limits, r.Limits)
		if !found[corev1.ResourceCPU] || !found[corev1.ResourceMemory] {
			guaranteed = false
		}
	}
	if pod.Spec.Resources != nil && (len(pod.Spec.Resources.Requests) > 0 || len(pod.Spec.Resources.Limits) > 0) {
		consider(*pod.Spec.Resources)
	} else {
		for _, c := range pod.Spec.InitContainers {
			consider(c.Resources)
		}
		for _, c := range pod.Spec.Containers {
			consider(c.Resources)
		}
	}
	if len(requests) == 0 && len(limits) == 0 {
		return corev1.PodQOSBestEffort
	}
	if guaranteed {
		for name, req := range requests {
			lim, ok := limits[name]
			if !ok || lim.Cmp(req) != 0 {
				guaranteed = false
				break
			}
		}
	}
	if guaranteed && len(requests) == len(limits) {
		return corev1.PodQOSGuaranteed
	}
	return corev1.PodQOSBurstable
}
