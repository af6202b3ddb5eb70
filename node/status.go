package node

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Condition reasons, as kubelet's status package.
const (
	reasonUnknownContainerStatuses = "UnknownContainerStatuses"
	reasonPodCompleted             = "PodCompleted"
	reasonPodFailed                = "PodFailed"
	reasonContainersNotReady       = "ContainersNotReady"
	reasonContainersNotInitialized = "ContainersNotInitialized"
	reasonReadinessGatesNotReady   = "ReadinessGatesNotReady"
)

// kubeletConditions are the pod conditions the node owns (kubelet's
// PodConditionsByKubelet plus PodReadyToStartContainers); any other
// condition in the status is kept as it is.
var kubeletConditions = map[corev1.PodConditionType]bool{
	corev1.PodScheduled:              true,
	corev1.PodReady:                  true,
	corev1.PodInitialized:            true,
	corev1.ContainersReady:           true,
	corev1.PodReadyToStartContainers: true,
}

// generatePodStatus is kubelet's generateAPIPodStatus followed by the
// status manager's lastTransitionTime bookkeeping: p is the stored pod
// (its status the old one), snap the node's view.
func generatePodStatus(p *corev1.Pod, snap *podSnapshot, podIsTerminal bool, now time.Time) corev1.PodStatus {
	old := p.Status
	s := corev1.PodStatus{
		ObservedGeneration:    p.Generation,
		InitContainerStatuses: snap.init,
		ContainerStatuses:     snap.regular,
		QOSClass:              qosClass(p),
	}
	for _, ip := range snap.podIPs {
		s.PodIPs = append(s.PodIPs, corev1.PodIP{IP: ip.String()})
	}
	if len(s.PodIPs) > 0 {
		s.PodIP = s.PodIPs[0].IP
	} else {
		s.PodIP, s.PodIPs = old.PodIP, old.PodIPs
	}
	if snap.hostIP.IsValid() {
		s.HostIP = snap.hostIP.String()
		s.HostIPs = []corev1.HostIP{{IP: s.HostIP}}
	} else {
		s.HostIP, s.HostIPs = old.HostIP, old.HostIPs
	}
	switch {
	case old.StartTime != nil:
		s.StartTime = old.StartTime
	case !snap.startTime.IsZero():
		t := metav1.NewTime(snap.startTime)
		s.StartTime = &t
	}

	all := append(append([]corev1.ContainerStatus{}, s.ContainerStatuses...), s.InitContainerStatuses...)
	s.Phase = getPhase(p, all, podIsTerminal)
	// "Perform a three-way merge ... to ensure terminal status is
	// correctly set": pods are not allowed to leave a terminal phase.
	if s.Phase != corev1.PodFailed && s.Phase != corev1.PodSucceeded &&
		(old.Phase == corev1.PodFailed || old.Phase == corev1.PodSucceeded) {
		s.Phase = old.Phase
	}
	if s.Phase == old.Phase {
		// "preserve the reason and message which is associated with the phase"
		s.Reason, s.Message = old.Reason, old.Message
	}

	// "preserve all conditions not owned by the kubelet"
	for _, c := range old.Conditions {
		if !kubeletConditions[c.Type] {
			s.Conditions = append(s.Conditions, c)
		}
	}
	allCS := append(append([]corev1.ContainerStatus{}, s.InitContainerStatuses...), s.ContainerStatuses...)
	ready2start := corev1.PodCondition{Type: corev1.PodReadyToStartContainers, Status: corev1.ConditionFalse}
	if snap.sandboxUp {
		ready2start.Status = corev1.ConditionTrue
	}
	s.Conditions = append(s.Conditions, ready2start)
	s.Conditions = append(s.Conditions, podInitializedCondition(p, allCS, s.Phase))
	s.Conditions = append(s.Conditions, podReadyCondition(p, s.Conditions, allCS, s.Phase))
	s.Conditions = append(s.Conditions, containersReadyCondition(p, allCS, s.Phase))
	s.Conditions = append(s.Conditions, corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue})

	// The status manager: "lastTransitionTime" only moves when a
	// condition's status changes.
	t := metav1.NewTime(now)
	for i := range s.Conditions {
		c := &s.Conditions[i]
		if !kubeletConditions[c.Type] {
			continue
		}
		c.ObservedGeneration = p.Generation
		c.LastTransitionTime = t
		for _, oc := range old.Conditions {
			if oc.Type == c.Type && oc.Status == c.Status {
				c.LastTransitionTime = oc.LastTransitionTime
			}
		}
	}
	return s
}

func findStatus(list []corev1.ContainerStatus, name string) (corev1.ContainerStatus, bool) {
	for _, cs := range list {
		if cs.Name == name {
			return cs, true
		}
	}
	return corev1.ContainerStatus{}, false
}

// getPhase is kubelet's getPhase: the phase of a pod from its container
// statuses (regular and init).
func getPhase(pod *corev1.Pod, info []corev1.ContainerStatus, podIsTerminal bool) corev1.PodPhase {
	spec := pod.Spec
	pendingInitialization := 0
	failedInitialization := 0
	// regular init containers
	for i := range spec.InitContainers {
		c := &spec.InitContainers[i]
		if isSidecar(c) {
			continue
		}
		cs, ok := findStatus(info, c.Name)
		if !ok {
			pendingInitialization++
			continue
		}
		switch {
		case cs.State.Running != nil:
			pendingInitialization++
		case cs.State.Terminated != nil:
			if cs.State.Terminated.ExitCode != 0 {
				failedInitialization++
			}
		case cs.State.Waiting != nil:
			if cs.LastTerminationState.Terminated != nil {
				if cs.LastTerminationState.Terminated.ExitCode != 0 {
					failedInitialization++
				}
			} else {
				pendingInitialization++
			}
		default:
			pendingInitialization++
		}
	}

	unknown, running, waiting, stopped, succeeded := 0, 0, 0, 0, 0
	// restartable init containers
	for i := range spec.InitContainers {
		c := &spec.InitContainers[i]
		if !isSidecar(c) {
			continue
		}
		cs, ok := findStatus(info, c.Name)
		if !ok {
			unknown++
			continue
		}
		switch {
		case cs.State.Running != nil:
			if cs.Started == nil || !*cs.Started {
				pendingInitialization++
			}
			running++
		case cs.State.Terminated != nil:
			// "terminated restartable init containers are not taken into
			// account for the pod phase"
		case cs.State.Waiting != nil:
			if cs.LastTerminationState.Terminated == nil {
				pendingInitialization++
				waiting++
			}
		default:
			pendingInitialization++
			unknown++
		}
	}

	for i := range spec.Containers {
		cs, ok := findStatus(info, spec.Containers[i].Name)
		if !ok {
			unknown++
			continue
		}
		switch {
		case cs.State.Running != nil:
			running++
		case cs.State.Terminated != nil:
			stopped++
			if cs.State.Terminated.ExitCode == 0 {
				succeeded++
			}
		case cs.State.Waiting != nil:
			if cs.LastTerminationState.Terminated != nil {
				stopped++
			} else {
				waiting++
			}
		default:
			unknown++
		}
	}

	if failedInitialization > 0 && spec.RestartPolicy == corev1.RestartPolicyNever {
		return corev1.PodFailed
	}
	switch {
	case pendingInitialization > 0 && !anyRegularContainerStarted(&spec, info):
		fallthrough
	case waiting > 0:
		// "One or more containers has not been started"
		return corev1.PodPending
	case running > 0 && unknown == 0:
		// "All containers have been started, and at least one container
		// is running"
		return corev1.PodRunning
	case running == 0 && stopped > 0 && unknown == 0:
		// "The pod is terminal so its containers won't be restarted
		// regardless of the restart policy."
		if podIsTerminal {
			if stopped == succeeded {
				return corev1.PodSucceeded
			}
			return corev1.PodFailed
		}
		if spec.RestartPolicy == corev1.RestartPolicyAlways {
			// "All containers are in the process of restarting"
			return corev1.PodRunning
		}
		if stopped == succeeded {
			return corev1.PodSucceeded
		}
		if spec.RestartPolicy == corev1.RestartPolicyNever {
			return corev1.PodFailed
		}
		// "RestartPolicy is OnFailure, and at least one in failure and in
		// the process of restarting"
		return corev1.PodRunning
	default:
		return corev1.PodPending
	}
}

// anyRegularContainerStarted is kubecontainer.HasAnyRegularContainerStarted.
func anyRegularContainerStarted(spec *corev1.PodSpec, info []corev1.ContainerStatus) bool {
	for i := range spec.Containers {
		cs, ok := findStatus(info, spec.Containers[i].Name)
		if !ok {
			continue
		}
		if cs.State.Running != nil || cs.State.Terminated != nil || cs.LastTerminationState.Terminated != nil {
			return true
		}
	}
	return false
}

// containersReadyCondition is kubelet's GenerateContainersReadyCondition.
func containersReadyCondition(pod *corev1.Pod, statuses []corev1.ContainerStatus, phase corev1.PodPhase) corev1.PodCondition {
	cond := corev1.PodCondition{Type: corev1.ContainersReady}
	if statuses == nil {
		cond.Status, cond.Reason = corev1.ConditionFalse, reasonUnknownContainerStatuses
		return cond
	}
	var unknown, unready []string
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		if !isSidecar(c) {
			continue
		}
		if cs, ok := findStatus(statuses, c.Name); !ok {
			unknown = append(unknown, c.Name)
		} else if !cs.Ready {
			unready = append(unready, c.Name)
		}
	}
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		if cs, ok := findStatus(statuses, c.Name); !ok {
			unknown = append(unknown, c.Name)
		} else if !cs.Ready {
			unready = append(unready, c.Name)
		}
	}
	// "If all containers are known and succeeded, just return PodCompleted."
	if (phase == corev1.PodSucceeded && len(unknown) == 0) || phase == corev1.PodFailed {
		return terminalCondition(corev1.ContainersReady, phase)
	}
	var msgs []string
	if len(unknown) > 0 {
		msgs = append(msgs, fmt.Sprintf("containers with unknown status: %s", unknown))
	}
	if len(unready) > 0 {
		msgs = append(msgs, fmt.Sprintf("containers with unready status: %s", unready))
	}
	if len(msgs) > 0 {
		cond.Status, cond.Reason, cond.Message = corev1.ConditionFalse, reasonContainersNotReady, strings.Join(msgs, ", ")
		return cond
	}
	cond.Status = corev1.ConditionTrue
	return cond
}

func terminalCondition(t corev1.PodConditionType, phase corev1.PodPhase) corev1.PodCondition {
	c := corev1.PodCondition{Type: t, Status: corev1.ConditionFalse}
	if phase == corev1.PodFailed {
		c.Reason = reasonPodFailed
	} else {
		c.Reason = reasonPodCompleted
	}
	return c
}

// podReadyCondition is kubelet's GeneratePodReadyCondition: Ready when
// all containers are ready and every readiness gate's condition is True.
func podReadyCondition(pod *corev1.Pod, conditions []corev1.PodCondition, statuses []corev1.ContainerStatus, phase corev1.PodPhase) corev1.PodCondition {
	cr := containersReadyCondition(pod, statuses, phase)
	if cr.Status != corev1.ConditionTrue {
		return corev1.PodCondition{Type: corev1.PodReady, Status: cr.Status, Reason: cr.Reason, Message: cr.Message}
	}
	var msgs []string
	for _, rg := range pod.Spec.ReadinessGates {
		var found *corev1.PodCondition
		for i := range conditions {
			if conditions[i].Type == rg.ConditionType {
				found = &conditions[i]
			}
		}
		if found == nil {
			msgs = append(msgs, fmt.Sprintf("corresponding condition of pod readiness gate %q does not exist.", string(rg.ConditionType)))
		} else if found.Status != corev1.ConditionTrue {
			msgs = append(msgs, fmt.Sprintf("the status of pod readiness gate %q is not \"True\", but %v", string(rg.ConditionType), found.Status))
		}
	}
	if len(msgs) > 0 {
		return corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: reasonReadinessGatesNotReady, Message: strings.Join(msgs, ", ")}
	}
	return corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue}
}

// podInitializedCondition is kubelet's GeneratePodInitializedCondition.
func podInitializedCondition(pod *corev1.Pod, statuses []corev1.ContainerStatus, phase corev1.PodPhase) corev1.PodCondition {
	cond := corev1.PodCondition{Type: corev1.PodInitialized}
	if statuses == nil && len(pod.Spec.InitContainers) > 0 {
		cond.Status, cond.Reason = corev1.ConditionFalse, reasonUnknownContainerStatuses
		return cond
	}
	var unknown, incomplete []string
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		cs, ok := findStatus(statuses, c.Name)
		if !ok {
			unknown = append(unknown, c.Name)
			continue
		}
		if isSidecar(c) {
			if cs.Started == nil || !*cs.Started {
				incomplete = append(incomplete, c.Name)
			}
		} else if !cs.Ready {
			incomplete = append(incomplete, c.Name)
		}
	}
	if phase == corev1.PodSucceeded && len(unknown) == 0 {
		cond.Status, cond.Reason = corev1.ConditionTrue, reasonPodCompleted
		return cond
	}
	// "If there is any regular container that has started, then the pod
	// has been initialized before."
	if anyRegularContainerStarted(&pod.Spec, statuses) {
		cond.Status = corev1.ConditionTrue
		return cond
	}
	var msgs []string
	if len(unknown) > 0 {
		msgs = append(msgs, fmt.Sprintf("containers with unknown status: %s", unknown))
	}
	if len(incomplete) > 0 {
		msgs = append(msgs, fmt.Sprintf("containers with incomplete status: %s", incomplete))
	}
	if len(msgs) > 0 {
		cond.Status, cond.Reason, cond.Message = corev1.ConditionFalse, reasonContainersNotInitialized, strings.Join(msgs, ", ")
		return cond
	}
	cond.Status = corev1.ConditionTrue
	return cond
}

// qosClass is the pod's QoS class as the docs define it: Guaranteed when
// every container has equal CPU and memory requests and limits,
// BestEffort when no container has any, Burstable otherwise.
func qosClass(pod *corev1.Pod) corev1.PodQOSClass {
	any, guaranteed := false, true
	check := func(cs []corev1.Container) {
		for _, c := range cs {
			for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				req, hasReq := c.Resources.Requests[r]
				lim, hasLim := c.Resources.Limits[r]
				if hasReq || hasLim {
					any = true
				}
				if !hasLim {
					guaranteed = false
					continue
				}
				if hasReq && req.Cmp(lim) != 0 {
					guaranteed = false
				}
			}
		}
	}
	check(pod.Spec.InitContainers)
	check(pod.Spec.Containers)
	switch {
	case !any:
		return corev1.PodQOSBestEffort
	case guaranteed:
		return corev1.PodQOSGuaranteed
	}
	return corev1.PodQOSBurstable
}
