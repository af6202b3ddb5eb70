package probe

import (
	"context"
	"fmt"
	"net"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestTCPSocket(t *testing.T) {
	t.Parallel()
	// A distinct loopback address keeps this test apart from others.
	l, err := net.Listen("tcp", "127.0.0.5:0")
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.5: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	accepted := make(chan struct{}, 16)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
			accepted <- struct{}{}
		}
	}()
	host, port := splitHostPort(t, l.Addr().String())
	refused := closedPort(t)
	hung := fullBacklogPort(t)
	c := &corev1.Container{Name: "db", Ports: []corev1.ContainerPort{{Name: "sql", ContainerPort: int32(port)}}}

	cases := []struct {
		name   string
		action corev1.TCPSocketAction
		ip     string
		want   Result
		msg    string
	}{
		{name: "a connection that opens is success", action: corev1.TCPSocketAction{Port: intstr.FromInt32(int32(port))}, ip: host, want: Success},
		{name: "port by name", action: corev1.TCPSocketAction{Port: intstr.FromString("sql")}, ip: host, want: Success},
		{name: "tcpSocket.host overrides the pod IP", action: corev1.TCPSocketAction{Host: host, Port: intstr.FromInt32(int32(port))}, ip: "", want: Success},
		{name: "connection refused is failure: dial tcp ...: connect: connection refused",
			action: corev1.TCPSocketAction{Port: intstr.FromInt32(int32(refused))}, ip: "127.0.0.1", want: Failure,
			msg: fmt.Sprintf("dial tcp 127.0.0.1:%d: connect: connection refused", refused)},
		{name: "no answer within timeoutSeconds is failure: i/o timeout",
			action: corev1.TCPSocketAction{Port: intstr.FromInt32(int32(hung))}, ip: "127.0.0.1", want: Failure,
			msg: fmt.Sprintf("dial tcp 127.0.0.1:%d: i/o timeout", hung)},
		{name: "an unknown port name is an error", action: corev1.TCPSocketAction{Port: intstr.FromString("web")}, ip: host,
			want: Failure, msg: `strconv.Atoi: parsing "web": invalid syntax`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &tc.action}, TimeoutSeconds: 1}
			got, msg := Run(context.Background(), p, Target{Pod: testPod(), Container: c, IP: tc.ip})
			if got != tc.want || msg != tc.msg {
				t.Fatalf("Run = %v %q, want %v %q", got, msg, tc.want, tc.msg)
			}
			if tc.want == Success {
				<-accepted // the listener really saw the connection
			}
		})
	}
}
